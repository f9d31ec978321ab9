"""Service configuration: `config.toml` decoded into msgspec Structs, plus environment overrides.

Unknown keys are an error that names the key (``forbid_unknown_fields``). Tokens never live here:
the tokens we issue are stored hashed in the database, the ones peers issue to us are stored as given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import msgspec

CountryCode = Annotated[str, msgspec.Meta(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[str, msgspec.Meta(min_length=3, max_length=3, pattern=r"^[A-Za-z0-9]{3}$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]

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
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    # The base URL peers use to reach us (behind a proxy it differs from host:port).
    public_url: str = "http://127.0.0.1:8000"
    # Largest request body we read, in bytes; OCPI objects are small, a Location with many EVSEs is
    # the largest thing a peer pushes (a few hundred kB at most).
    max_body_bytes: PositiveInt = 1_048_576
    # Outbound OCPI calls: seconds to connect / to wait for a whole reply.
    connect_timeout_s: Positive = 5.0
    request_timeout_s: Positive = 20.0


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


class ReadbackConfig(_Section, kw_only=True, frozen=True):
    """Reading back what the charge points applied (GET ActiveChargingProfile)."""

    interval_s: PositiveInt = 900
    # `duration` asked for in GET ActiveChargingProfile, seconds.
    duration_s: PositiveInt = 3600
    # Applied limit within this many W above plan counts as compliant (meter and rounding noise).
    tolerance_w: NonNegative = 100.0


class OptimizerConfig(_Section, kw_only=True, frozen=True):
    """Solver settings."""

    # Wall-clock limit for the MILP used when sessions have a minimum rate, seconds.
    milp_time_limit_s: Positive = 2.0
    # Above this many sessions x slots the MILP is skipped for LP + repair.
    milp_max_cells: PositiveInt = 50_000
    # Worker threads solving sites in parallel.
    workers: PositiveInt = 2


class ProfilesConfig(_Section, kw_only=True, frozen=True):
    """Turning plans into OCPI ChargingProfiles."""

    # Most periods one profile may carry; charge points commonly accept few.
    max_periods: PositiveInt = 24
    # Seconds after the profile start at which the failsafe tail begins.
    failsafe_delay_s: PositiveInt = 3600
    # Allow W for AC sessions (only for CPOs that demand it: ocpi-notes §10.1).
    ac_unit: Literal["A", "W"] = "A"
    # A new profile is sent only when it differs by more than this (A or W per phase-unit) ...
    material_change_a: NonNegative = 1.0
    material_change_w: NonNegative = 500.0
    # ... or moves a change point by more than this many seconds.
    material_shift_s: NonNegative = 300.0
    # Re-send when the failsafe tail is closer than this many seconds.
    resend_margin_s: NonNegative = 900.0


class DefaultsConfig(_Section, kw_only=True, frozen=True):
    """Electrical facts assumed for sessions whose Location/EVSE we do not know."""

    phases: Literal[1, 2, 3] = 3
    max_amperage_a: Positive = 16.0
    voltage_v: Positive = 230.0
    # Site import limit assumed for a location nobody configured, W.
    site_limit_w: Positive = 100_000.0
    # Fraction of the site limit the charge points fall back to when they lose us.
    failsafe_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.3


class SimulatorConfig(_Section, kw_only=True, frozen=True):
    """The CPO simulator (`scsp simulate-cpo`)."""

    country_code: CountryCode = "NL"
    party_id: PartyId = "SIM"
    business_name: str = "scsp CPO simulator"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8100
    public_url: str = "http://127.0.0.1:8100"
    # The simulator keeps its registrations in its own SQLite file (relative to the config file).
    db_path: str = "simulator.db"


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The whole service configuration."""

    db_path: str = "scsp.db"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    party: PartyConfig = msgspec.field(default_factory=PartyConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    planning: PlanningConfig = msgspec.field(default_factory=PlanningConfig)
    readback: ReadbackConfig = msgspec.field(default_factory=ReadbackConfig)
    optimizer: OptimizerConfig = msgspec.field(default_factory=OptimizerConfig)
    profiles: ProfilesConfig = msgspec.field(default_factory=ProfilesConfig)
    defaults: DefaultsConfig = msgspec.field(default_factory=DefaultsConfig)
    simulator: SimulatorConfig = msgspec.field(default_factory=SimulatorConfig)

    @property
    def versions_url(self) -> str:
        """Our version information endpoint, as peers see it."""
        return join_url(self.http.public_url, "ocpi/versions")


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
}


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the config file (`SCSP_CONFIG` or the top-level `config.toml`) and apply env overrides.

    Raises:
        ConfigError: naming the file and the offending key.
    """
    env = dict(os.environ) if env is None else env
    path = path or Path(env.get("SCSP_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        raw = msgspec.toml.decode(path.read_bytes()) if path.exists() else {}
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a TOML table")
    for var, keys in _ENV_OVERRIDES.items():
        if env.get(var):
            table = raw
            for key in keys[:-1]:
                table = table.setdefault(key, {})
            value: object = env[var]
            if keys[-1] == "port":
                try:
                    value = int(env[var])
                except ValueError:
                    raise ConfigError(f"{var}: expected an integer, got {env[var]!r}") from None
            table[keys[-1]] = value
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
