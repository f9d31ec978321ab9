"""The simulated charge points: EVSEs, sites and their meters, and how a charge point reads a profile.

Pure: no I/O, no clock. `cposim.model` builds the CPO's world from these.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.locations import (
    CHARGING_PROFILE_CAPABLE,
    EVSE,
    Connector,
    EvseStatus,
    PowerType,
    current_paths,
)
from scsp.config import SimEvseConfig, SimSiteConfig


def floor1(value: float) -> float:
    """Round down to one decimal, as a ChargingProfile limit must be ("at most one digit fraction")."""
    # The small epsilon keeps 7.3 (stored as 7.2999999...) at 7.3 instead of 7.2.
    return math.floor(value * 10 + 1e-9) / 10


def whole_second(moment: datetime) -> datetime:
    """`moment` truncated to whole seconds (OCPI DateTime as we write it)."""
    return moment.replace(microsecond=0)


@dataclass
class Evse:
    """One EVSE with its single connector, as configured, plus its live status."""

    location_id: str
    uid: str
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None
    capabilities: tuple[str, ...]
    standard: str
    format: str
    status: EvseStatus
    last_updated: datetime
    session_id: str | None = None

    @property
    def phases(self) -> int:
        """Phases of the power_type (1 for DC: an A limit times the DC voltage gives W)."""
        return current_paths(self.power_type)

    @property
    def is_dc(self) -> bool:
        """True for a DC EVSE (limits in W, or A x DC voltage)."""
        return self.power_type == PowerType.DC

    @property
    def profile_capable(self) -> bool:
        """True when the EVSE lists CHARGING_PROFILE_CAPABLE."""
        return CHARGING_PROFILE_CAPABLE in self.capabilities

    def max_w(self, phases: int | None = None) -> float:
        """Most power the EVSE delivers over `phases` (default: all), capped by max_electric_power."""
        used = self.phases if phases is None or self.is_dc else min(phases, self.phases)
        power = float(self.max_voltage * self.max_amperage * used)
        if self.max_electric_power is not None:
            power = min(power, float(self.max_electric_power))
        return power

    def max_in(self, unit: ChargingRateUnit) -> float:
        """The EVSE maximum expressed in `unit` (A per phase, or W in total)."""
        if unit == ChargingRateUnit.W:
            return self.max_w()
        return self.max_w() / (self.max_voltage * self.phases)

    def to_w(self, limit: float, unit: ChargingRateUnit, phases: int) -> float:
        """A limit in `unit` as W: A x max_voltage (line to neutral) x phases used; W as given."""
        if unit == ChargingRateUnit.W:
            return limit
        return limit * self.max_voltage * (1 if self.is_dc else min(phases, self.phases))

    def connector(self) -> Connector:
        """The OCPI Connector (id "1")."""
        return Connector(
            id="1",
            standard=self.standard,
            format=self.format,
            power_type=self.power_type,
            max_voltage=self.max_voltage,
            max_amperage=self.max_amperage,
            max_electric_power=self.max_electric_power,
            last_updated=self.last_updated,
        )

    def ocpi(self, country_code: str, party_id: str) -> EVSE:
        """The OCPI EVSE object."""
        evse_id = "*".join((country_code, party_id, "E" + "".join(c for c in self.uid if c.isalnum())))
        return EVSE(
            uid=self.uid,
            evse_id=evse_id[:48],
            status=self.status,
            connectors=[self.connector()],
            capabilities=list(self.capabilities),
            last_updated=self.last_updated,
        )


@dataclass
class Site:
    """One Location: its configuration, EVSEs and meter."""

    config: SimSiteConfig
    evses: dict[str, Evse]
    last_updated: datetime
    meter: SiteMeter

    @property
    def id(self) -> str:
        """Location.id."""
        return self.config.id


def expand_evses(site: SimSiteConfig) -> list[tuple[str, SimEvseConfig]]:
    """The site's EVSEs as (uid, config); an entry with count > 1 gives "{uid}-1" ... "{uid}-{count}"."""
    out: list[tuple[str, SimEvseConfig]] = []
    for evse in site.evses:
        if evse.count == 1:
            out.append((evse.uid, evse))
        else:
            out += [(f"{evse.uid}-{n}", evse) for n in range(1, evse.count + 1)]
    return out


@dataclass
class SiteMeter:
    """A site's actual load: per-tick samples (bounded), peak and energy since start."""

    window_s: float
    samples: deque[tuple[float, float]] = field(default_factory=deque)
    peak_w: float = 0.0
    peak_at: float | None = None
    energy_wh: float = 0.0

    def record(self, t: float, load_w: float) -> None:
        """Add a sample at unix time `t` and forget the ones older than the window."""
        self.samples.append((t, load_w))
        while self.samples and self.samples[0][0] < t - self.window_s:
            self.samples.popleft()
        if load_w > self.peak_w:
            self.peak_w, self.peak_at = load_w, t


def profile_limit_at(profile: ChargingProfile, t: datetime, charging_start: datetime) -> float | None:
    """The limit (in the profile's unit) in force at `t`, or None where the profile sets none.

    Absolute when `start_date_time` is set, else relative to the start of charging; each period
    lasts until the next `start_period`; the last one until `duration` ends (when set) or
    indefinitely. Before the start, before the first period and after the duration: no limit.
    """
    start = profile.start_date_time or charging_start
    offset = (t - start).total_seconds()
    if offset < 0 or (profile.duration is not None and offset >= profile.duration):
        return None
    limit: float | None = None
    for period in sorted(profile.charging_profile_period, key=lambda p: p.start_period):
        if period.start_period > offset:
            break
        limit = period.limit
    return limit


def profile_breakpoints(profile: ChargingProfile, charging_start: datetime) -> list[datetime]:
    """Instants at which the profile's limit may change (period starts and the end of `duration`)."""
    start = profile.start_date_time or charging_start
    points = [start + timedelta(seconds=p.start_period) for p in profile.charging_profile_period]
    if profile.duration is not None:
        points.append(start + timedelta(seconds=profile.duration))
    return sorted(set(points))


def scaled_profile(profile: ChargingProfile, fraction: float) -> ChargingProfile:
    """The profile with every limit multiplied by `fraction`, rounded down to one decimal (APPLY_LOWER)."""
    if fraction >= 1.0:
        return profile
    return ChargingProfile(
        start_date_time=profile.start_date_time,
        duration=profile.duration,
        charging_rate_unit=profile.charging_rate_unit,
        min_charging_rate=profile.min_charging_rate,
        charging_profile_period=[
            ChargingProfilePeriod(start_period=p.start_period, limit=floor1(p.limit * fraction))
            for p in profile.charging_profile_period
        ],
    )

