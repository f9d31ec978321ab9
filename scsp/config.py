"""Service configuration: `config.toml` decoded into msgspec Structs, plus environment overrides.

Unknown keys are an error that names the key (``forbid_unknown_fields``). Tokens never live here:
the tokens we issue are stored hashed in the database, the ones peers issue to us are stored as given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from profiles.model import ProfileSettings

CountryCode = Annotated[str, msgspec.Meta(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[str, msgspec.Meta(min_length=3, max_length=3, pattern=r"^[A-Za-z0-9]{3}$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]  # 0 picks a free port

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config.toml"


class ConfigError(ValueError):
    """The configuration file or an environment override is invalid."""


class _Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class PartyConfig(_Section, kw_only=True, frozen=True):
    """Our own OCPI identity (CredentialsRole with role SCSP)."""

    country_code: CountryCode = "NL"
    party_id: PartyId = "SCP"
    business_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "scsp"
    website: str | None = None


class HttpConfig(_Section, kw_only=True, frozen=True):
    """Where we listen and how peers reach us."""

    host: str = "127.0.0.1"
    port: Port = 8000
    # The base URL peers use to reach us (behind a proxy it differs from host:port).
    public_url: str = "http://127.0.0.1:8000"
    # Largest request body we read, in bytes; OCPI objects are small, a Location with many EVSEs is
    # the largest thing a peer pushes (a few hundred kB at most).
    max_body_bytes: PositiveInt = 1_048_576
    # Outbound OCPI calls: seconds to connect / to wait for a whole reply.
    connect_timeout_s: Positive = 5.0
    request_timeout_s: Positive = 20.0
    # Host patterns (fnmatch: "*.cpo.example", "10.1.2.*") outbound calls may reach, registration's
    # fetches of a peer's versions included; empty: any host.
    peer_url_allow: tuple[Annotated[str, msgspec.Meta(min_length=1)], ...] = ()
    # When set, `/metrics` answers only `Authorization: Bearer <key>` (it lists every site with its
    # limits). Either the key itself or `sha256:<hex>` of it, so the file need not hold the key.
    metrics_key: Annotated[str, msgspec.Meta(min_length=16)] | None = None


class PlanningConfig(_Section, kw_only=True, frozen=True):
    """The planning cycle."""

    interval_s: PositiveInt = 300
    # Seconds to wait after an event (new session, signal, preference) before re-planning, so a burst of
    # events costs one cycle.
    debounce_s: NonNegative = 5.0
    horizon_h: Positive = 24.0
    slot_minutes: PositiveInt = 15
    # Assumed when a driver gave no preferences: hours until departure and energy need.
    default_departure_h: Positive = 8.0
    default_energy_kwh: Positive = 30.0
    default_profile_type: Literal["CHEAP", "FAST", "GREEN", "REGULAR"] = "REGULAR"
    # Seconds between slow pulls of Sessions/Locations from each CPO ("hours, not minutes").
    pull_interval_s: PositiveInt = 3600
    # Random splay added to each pull, in seconds.
    pull_splay_s: NonNegative = 300.0
    # Lowest current an AC vehicle charges at (A per phase; IEC 61851-1 has no pilot duty cycle below
    # 6 A): a session charges 0 or at least this. 0 plans without minimum rates (pure LP).
    min_current_a: NonNegative = 6.0
    # False: keep receiving and planning but never send a profile (observe-only mode).
    dispatch: bool = True
    # An ACTIVE session not updated for this many hours is taken as lost (its COMPLETED never came)
    # and left out of planning; a later update brings it back.
    stale_session_h: Positive = 24.0
    # A session whose CPO connection is gone (unregistered, refusing our token, not answering) counts
    # as fixed load at what its last profile allows for at most this many hours after the loss.
    orphan_session_h: Positive = 2.0
    # A session whose reported energy did not grow for this many minutes while it was allowed power
    # is planned at what it draws: nothing (fixed load), or its minimum rate when we steer it.
    idle_session_min: Positive = 30.0
    # What each site's plan keeps free for EVs that arrive before their first profile reaches them
    # (a site's grid settings may set its own): "none", "largest_idle_evse" (the maximum of the largest
    # profile-capable EVSE without a session) or "fixed" (`arrival_reserve_w`).
    arrival_reserve: Literal["none", "largest_idle_evse", "fixed"] = "none"
    arrival_reserve_w: NonNegative = 0.0


class ReadbackConfig(_Section, kw_only=True, frozen=True):
    """Reading back what the charge points applied (GET ActiveChargingProfile)."""

    interval_s: PositiveInt = 900
    # `duration` asked for in GET ActiveChargingProfile, seconds.
    duration_s: PositiveInt = 3600


class OptimizerConfig(_Section, kw_only=True, frozen=True):
    """Solver settings."""

    # Wall-clock limit for the MILP used when sessions have a minimum rate, seconds.
    milp_time_limit_s: Positive = 2.0
    # Above this many sessions x slots the MILP is skipped for LP + repair.
    milp_max_cells: PositiveInt = 50_000
    # Sites solved in parallel, and by what: "process" (one solver process per worker: sites solve on
    # every core, and a solver that crashes takes only its worker down) or "thread" (no start-up
    # cost; the solver holds Python's lock, so threads do not add cores) or "dask" (on the workers of
    # the dask.distributed scheduler at `scheduler`, other machines with the same scsp installed;
    # `workers` is then unused: the cluster has its own). A lost Dask worker costs its sites one
    # failsafe plan.
    workers: PositiveInt = 2
    executor: Literal["process", "thread", "dask"] = "process"
    # With executor = "dask": a site without a result this long after it was sent (no worker joined,
    # a worker hangs) gets its failsafe plan for this cycle, seconds.
    task_timeout_s: Positive = 120.0
    # With executor = "dask": the scheduler's address, e.g. "tcp://10.0.0.5:8786".
    scheduler: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9+.-]*://[^\s/]+$")] | None = None

    def __post_init__(self) -> None:
        if self.executor == "dask" and self.scheduler is None:
            raise ValueError('executor = "dask" needs scheduler = "tcp://host:8786"')


class DefaultsConfig(_Section, kw_only=True, frozen=True):
    """Electrical facts assumed for sessions whose Location/EVSE we do not know."""

    phases: Literal[1, 2, 3] = 3
    max_amperage_a: Positive = 16.0
    voltage_v: Positive = 230.0
    # Site import limit assumed for a location nobody configured, W.
    site_limit_w: Positive = 100_000.0
    # Fraction of the site limit the charge points fall back to when they lose us.
    failsafe_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.3


# OCPI 2.2.1 PowerType values (mod_locations.asciidoc).
SimPowerType = Literal["AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"]


class SimEvseConfig(_Section, kw_only=True, frozen=True):
    """One simulated EVSE (with one connector), or `count` identical ones."""

    # EVSE.uid (CiString(36)); with count > 1 the EVSEs are "{uid}-1" ... "{uid}-{count}".
    uid: Annotated[str, msgspec.Meta(min_length=1, max_length=33, pattern=r"^[!-~]+$")]
    power_type: SimPowerType
    # Connector.max_voltage in V: "line to neutral for AC_3_PHASE"; the DC voltage for DC.
    max_voltage: PositiveInt
    # Connector.max_amperage in A (per phase for AC).
    max_amperage: PositiveInt
    # Connector.max_electric_power in W, when lower than V x A x phases.
    max_electric_power: PositiveInt | None = None
    # EVSE.capabilities; without CHARGING_PROFILE_CAPABLE every ChargingProfiles request is NOT_SUPPORTED.
    capabilities: tuple[str, ...] = ("CHARGING_PROFILE_CAPABLE", "REMOTE_START_STOP_CAPABLE", "RFID_READER")
    # Connector.standard (ConnectorType) and Connector.format.
    standard: str = "IEC_62196_T2"
    format: Literal["SOCKET", "CABLE"] = "SOCKET"
    count: Annotated[int, msgspec.Meta(ge=1, le=999)] = 1


class SimSiteConfig(_Section, kw_only=True, frozen=True):
    """One simulated site: an OCPI Location with its EVSEs."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=36, pattern=r"^[!-~]+$")]  # Location.id
    name: str
    # Traffic pattern of its AC EVSEs (DC EVSEs always follow the fast-charging pattern).
    kind: Literal["workplace", "public"] = "public"
    address: str = "Stationsplein 1"
    city: str = "Amsterdam"
    postal_code: str = "1012 AB"
    country: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] = "NLD"
    latitude: str = "52.378900"
    longitude: str = "4.900300"
    # IANA zone: Location.time_zone, and the local clock of the daily arrival pattern.
    time_zone: str = "Europe/Amsterdam"
    evses: tuple[SimEvseConfig, ...] = ()


_NO_PROFILES = ("REMOTE_START_STOP_CAPABLE", "RFID_READER")
_DC_STANDARD = "IEC_62196_T2_COMBO"  # CCS2, with a tethered cable

# The layout `make run` simulates (cposim/README.md): a workplace and a public site,
# 12 EVSEs each, mixing AC 1-phase, AC 3-phase and DC; one EVSE per site cannot take profiles.
DEFAULT_SIM_SITES: tuple[SimSiteConfig, ...] = (
    SimSiteConfig(
        id="LOC-WORK", name="Business park Noord", kind="workplace", address="Papaverweg 40",
        city="Amsterdam", postal_code="1032 KJ", latitude="52.394400", longitude="4.897900",
        evses=(
            SimEvseConfig(uid="WRK-AC3-11KW", power_type="AC_3_PHASE", max_voltage=230, max_amperage=16, count=6),
            SimEvseConfig(uid="WRK-AC3-22KW", power_type="AC_3_PHASE", max_voltage=230, max_amperage=32, count=2),
            SimEvseConfig(uid="WRK-AC1-7KW", power_type="AC_1_PHASE", max_voltage=230, max_amperage=32, count=3),
            SimEvseConfig(uid="WRK-AC3-OLD", power_type="AC_3_PHASE", max_voltage=230, max_amperage=16,
                          capabilities=_NO_PROFILES),
        ),
    ),
    SimSiteConfig(
        id="LOC-CITY", name="City centre hub", kind="public", address="Jaarbeursplein 6",
        city="Utrecht", postal_code="3521 AL", latitude="52.089400", longitude="5.107600",
        evses=(
            SimEvseConfig(uid="CTY-AC3-22KW", power_type="AC_3_PHASE", max_voltage=230, max_amperage=32, count=4),
            SimEvseConfig(uid="CTY-AC1-7KW", power_type="AC_1_PHASE", max_voltage=230, max_amperage=32, count=3),
            SimEvseConfig(uid="CTY-AC1-OLD", power_type="AC_1_PHASE", max_voltage=230, max_amperage=16,
                          capabilities=_NO_PROFILES),
            SimEvseConfig(uid="CTY-DC-50KW", power_type="DC", max_voltage=500, max_amperage=125,
                          max_electric_power=50_000, count=2, standard=_DC_STANDARD, format="CABLE"),
            SimEvseConfig(uid="CTY-DC-150KW", power_type="DC", max_voltage=920, max_amperage=250,
                          max_electric_power=150_000, count=2, standard=_DC_STANDARD, format="CABLE"),
        ),
    ),
)


class SimulatorConfig(_Section, kw_only=True, frozen=True):
    """The CPO simulator (`scsp simulate-cpo`)."""

    country_code: CountryCode = "NL"
    party_id: PartyId = "SIM"
    business_name: str = "scsp CPO simulator"
    host: str = "127.0.0.1"
    port: Port = 8100
    public_url: str = "http://127.0.0.1:8100"
    # The simulator keeps its registrations in its own SQLite file (relative to the config file).
    db_path: str = "simulator.db"
    # Seconds between simulation steps: EVs draw power, arrive and leave, the meter samples.
    tick_s: Annotated[float, msgspec.Meta(ge=0.01, le=60)] = 1.0
    # Seconds between Session PATCHes (kwh + one new ChargingPeriod each); whole-second DateTimes
    # make shorter periods meaningless.
    session_update_s: Annotated[float, msgspec.Meta(ge=1)] = 60.0
    # Random EV arrivals on the daily pattern; false leaves only EVs plugged in by the control API.
    arrivals: bool = True
    # Multiplies every arrival rate (2.0 = twice the traffic).
    arrival_rate_scale: NonNegative = 1.0
    # Seed of the random generator (arrivals, dwell, energy, vehicles): same seed, same traffic.
    seed: int = 1
    # ChargingProfileResponse.timeout we announce, seconds.
    profile_timeout_s: PositiveInt = 30
    # Seconds between our synchronous answer and the charge point's result POST (to response_url).
    callback_delay_s: NonNegative = 1.0
    # Length of the ActiveChargingProfile we push, seconds (mod_charging_profiles: "between 5 and 60 minutes").
    active_profile_duration_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 3600
    # X-Limit: the most objects one page of a GET list returns.
    page_limit: PositiveInt = 100
    # Seconds of per-tick site load samples the meter keeps (older samples are dropped).
    meter_window_s: PositiveInt = 21_600
    # Finished sessions kept for the Sessions Sender (pull); the oldest are forgotten first.
    completed_sessions_kept: PositiveInt = 10_000
    # ChargingProfiles requests kept for `GET /sim/commands`.
    commands_kept: PositiveInt = 10_000
    # Session.currency (ISO 4217).
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] = "EUR"
    sites: tuple[SimSiteConfig, ...] = DEFAULT_SIM_SITES


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The whole service configuration."""

    db_path: str = "scsp.db"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Log lines on stderr: "text" (readable, each naming its server) or "json" (one object per line).
    log_format: Literal["text", "json"] = "text"
    party: PartyConfig = msgspec.field(default_factory=PartyConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    planning: PlanningConfig = msgspec.field(default_factory=PlanningConfig)
    readback: ReadbackConfig = msgspec.field(default_factory=ReadbackConfig)
    optimizer: OptimizerConfig = msgspec.field(default_factory=OptimizerConfig)
    # How profiles are built and compared: the profile package's own settings, decoded directly.
    profiles: ProfileSettings = msgspec.field(default_factory=ProfileSettings)
    defaults: DefaultsConfig = msgspec.field(default_factory=DefaultsConfig)
    simulator: SimulatorConfig = msgspec.field(default_factory=SimulatorConfig)
    # Per CPO ("CC-PID" of the party owning the sessions): `[profiles]` keys that differ for it, e.g.
    # a CPO that demands W for AC or accepts only a few periods.
    party_profiles: dict[str, dict[str, Any]] = {}

    def __post_init__(self) -> None:
        """Check every per-party profile override now, naming the party and the key."""
        for handle in self.party_profiles:
            try:
                self.profile_settings_for(*_split_handle(handle))
            except (msgspec.ValidationError, ValueError) as exc:
                raise ValueError(f"party_profiles.{handle}: {exc}") from None

    def profile_settings_for(self, country_code: str, party_id: str) -> ProfileSettings:
        """The profile settings of the CPO (country_code, party_id): `[profiles]` with its overrides."""
        override = self.party_profiles.get(f"{country_code.upper()}-{party_id.upper()}")
        if not override:
            return self.profiles
        return msgspec.convert({**msgspec.to_builtins(self.profiles), **override}, ProfileSettings)

    @property
    def versions_url(self) -> str:
        """Our version information endpoint, as peers see it."""
        return join_url(self.http.public_url, "ocpi/versions")


def _split_handle(handle: str) -> tuple[str, str]:
    country_code, sep, party_id = handle.partition("-")
    if not sep or len(country_code) != 2 or len(party_id) != 3:
        raise ValueError("expected a party handle like NL-ABC")
    return country_code, party_id


def join_url(base: str, *parts: str) -> str:
    """Join URL parts with exactly one `/` between them (ocpi-notes §10.3: peers differ on slashes)."""
    url = base.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            url = f"{url}/{part}"
    return url


_ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "SCSP_DB_PATH": ("db_path",),
    "SCSP_HOST": ("http", "host"),
    "SCSP_PORT": ("http", "port"),
    "SCSP_PUBLIC_URL": ("http", "public_url"),
    "SCSP_SIM_PORT": ("simulator", "port"),
    "SCSP_SIM_PUBLIC_URL": ("simulator", "public_url"),
}
# A port moved by the environment moves the public URL with it, unless the URL is set too (in the
# file or the environment): `SCSP_PORT=8010 make run` must not announce port 8000 to the CPO.
_URL_FOLLOWS_PORT = (("SCSP_PORT", "SCSP_PUBLIC_URL", "http", HttpConfig),
                     ("SCSP_SIM_PORT", "SCSP_SIM_PUBLIC_URL", "simulator", SimulatorConfig))


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the config file (`SCSP_CONFIG` or the top-level `config.toml`) and apply env overrides.

    Raises:
        ConfigError: naming the file and the offending key.
    """
    env = dict(os.environ) if env is None else env
    explicit = path is not None or bool(env.get("SCSP_CONFIG"))
    path = path or Path(env.get("SCSP_CONFIG") or DEFAULT_CONFIG_PATH)
    if explicit and not path.exists():
        # Only the default file may be absent: a path someone named and mistyped must not silently
        # mean "all defaults" (and a new database next to it).
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = msgspec.toml.decode(path.read_bytes()) if path.exists() else {}
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a TOML table")
    set_urls = {section for _, url_var, section, _ in _URL_FOLLOWS_PORT
                if env.get(url_var) or "public_url" in (raw.get(section) or {})}
    for var, keys in _ENV_OVERRIDES.items():
        if env.get(var):
            table = raw
            for key in keys[:-1]:
                table = table.setdefault(key, {})
            value: object = env[var]
            if keys[-1] == "port":
                try:
                    value = msgspec.convert(int(env[var]), Port)
                except ValueError:  # msgspec.ValidationError is a ValueError too: one message for both
                    raise ConfigError(f"{var}: expected a port number 0-65535, got {env[var]!r}") from None
            table[keys[-1]] = value
    for port_var, _, section, kind in _URL_FOLLOWS_PORT:
        if env.get(port_var) and section not in set_urls and isinstance(raw.get(section), dict):
            host = str(raw[section].get("host", kind().host))
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
            raw[section]["public_url"] = f"http://{host}:{raw[section]['port']}"
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if config.db_path != ":memory:" and not Path(config.db_path).is_absolute():
        # A relative db_path is relative to the config file, so `make run` and tests agree.
        config = msgspec.structs.replace(config, db_path=str(path.resolve().parent / config.db_path))
    if not Path(config.simulator.db_path).is_absolute():
        simulator = msgspec.structs.replace(
            config.simulator, db_path=str(path.resolve().parent / config.simulator.db_path))
        config = msgspec.structs.replace(config, simulator=simulator)
    return config
