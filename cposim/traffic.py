"""EV traffic of the simulated sites: when EVs arrive, how long they stay, what they need and can draw.

Documented in `cposim/README.md` ("Traffic"). Arrivals at each free EVSE are a
non-homogeneous Poisson process in the site's local time: `sessions_per_day` times a mixture of
normal densities over the hour of day (wrapped around midnight). Each mixture component carries its
own lognormal dwell time, so morning commuters stay a working day and evening residents overnight.
An EV arriving at a busy EVSE goes elsewhere (it is not queued).

The numbers are chosen to look like published charging data (workplace peaks around 8-9 h with
~8 h dwell; public AC with shopping and overnight peaks; DC fast charging ~30 min), not fitted to it.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Component:
    """One arrival peak: weight, mean and spread of the local arrival hour, lognormal dwell."""

    weight: float
    mean_h: float
    sd_h: float
    dwell_median_h: float
    dwell_sigma: float


@dataclass(frozen=True)
class Pattern:
    """A daily arrival pattern of one EVSE: expected sessions per day and the arrival-time mixture."""

    sessions_per_day: float
    components: tuple[Component, ...]


# Workplace AC on weekdays: commuters around 8:20 staying ~8 h, visitors around 13:00 staying ~3 h.
WORKPLACE_WEEKDAY = Pattern(1.1, (Component(0.75, 8.3, 0.9, 8.0, 0.25), Component(0.25, 13.0, 1.5, 3.0, 0.5)))
# Workplace AC on Saturdays and Sundays: a few visitors around midday.
WORKPLACE_WEEKEND = Pattern(0.15, (Component(1.0, 11.5, 2.5, 3.0, 0.6),))
# Public AC: morning errands, an afternoon shopping peak, residents plugging in overnight.
PUBLIC = Pattern(
    2.5,
    (
        Component(0.3, 9.0, 1.5, 2.5, 0.6),
        Component(0.4, 13.5, 2.5, 1.8, 0.6),
        Component(0.3, 18.5, 1.5, 11.0, 0.3),
    ),
)
# DC fast charging (any site): late morning, afternoon and evening peaks, ~30 min stops.
FAST = Pattern(
    8.0,
    (
        Component(0.35, 11.0, 2.5, 0.5, 0.35),
        Component(0.45, 16.5, 2.5, 0.5, 0.35),
        Component(0.2, 20.5, 1.5, 0.5, 0.35),
    ),
)

# Dwell is clipped to [MIN, MAX] hours: nobody plugs in for seconds, and a day-long stay is the cap.
DWELL_MIN_H = 0.1
DWELL_MAX_H = 16.0

# Energy need in kWh: lognormal (median, sigma), clipped to a realistic range per EVSE kind.
AC_ENERGY = (14.0, 0.5, 2.0, 60.0)
DC_ENERGY = (28.0, 0.4, 5.0, 80.0)

# AC on-board chargers: (phases, A per phase, share of vehicles). Power = 230 V x A x phases.
AC_CHARGERS: tuple[tuple[int, int, float], ...] = ((1, 16, 0.15), (1, 32, 0.25), (3, 16, 0.50), (3, 32, 0.10))
AC_NOMINAL_V = 230.0
# IEC 61851-1: an AC EV cannot charge below 6 A per phase.
AC_MIN_A = 6.0
# DC vehicle maxima in W and their shares.
DC_MAXIMA: tuple[tuple[float, float], ...] = (
    (50_000.0, 0.15),
    (100_000.0, 0.35),
    (150_000.0, 0.35),
    (250_000.0, 0.15),
)


@dataclass(frozen=True)
class EvProfile:
    """What one arriving EV needs and can do."""

    energy_kwh: float
    dwell_s: float
    max_w: float
    phases: int
    min_a: float | None


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_hour(now: datetime, time_zone: str) -> tuple[float, int]:
    """Hour of day (fractional) and weekday (Monday 0) of `now` at the site."""
    local = now.astimezone(_zone(time_zone))
    return local.hour + local.minute / 60 + local.second / 3600, local.weekday()


def pattern_for(kind: str, weekday: int) -> Pattern:
    """The arrival pattern of an EVSE kind ("workplace", "public" or "dc") on a weekday."""
    if kind == "dc":
        return FAST
    if kind == "workplace":
        return WORKPLACE_WEEKDAY if weekday < 5 else WORKPLACE_WEEKEND
    return PUBLIC


def _density(component: Component, hour: float) -> float:
    """Normal density of the arrival hour, wrapped around midnight, per hour."""
    total = 0.0
    for shift in (-24.0, 0.0, 24.0):
        z = (hour - component.mean_h + shift) / component.sd_h
        total += math.exp(-0.5 * z * z) / (component.sd_h * math.sqrt(2 * math.pi))
    return total


def arrival_rate_per_h(kind: str, now: datetime, time_zone: str) -> float:
    """Expected arrivals per hour at one free EVSE of this kind at `now`."""
    hour, weekday = local_hour(now, time_zone)
    pattern = pattern_for(kind, weekday)
    return pattern.sessions_per_day * sum(c.weight * _density(c, hour) for c in pattern.components)


def arrival_probability(kind: str, now: datetime, time_zone: str, dt_s: float, scale: float) -> float:
    """Probability that an EV arrives at one free EVSE within `dt_s` seconds (Poisson)."""
    rate = arrival_rate_per_h(kind, now, time_zone) * scale
    return 1.0 - math.exp(-rate * dt_s / 3600)


def _lognormal_clipped(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(max(rng.lognormvariate(math.log(median), sigma), low), high)


def _weighted(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def draw_ev(rng: random.Random, kind: str, now: datetime, time_zone: str, is_dc: bool) -> EvProfile:
    """Draw an arriving EV: dwell from the arrival peak it belongs to, energy need, vehicle limits."""
    hour, weekday = local_hour(now, time_zone)
    components = pattern_for(kind, weekday).components
    component = components[_weighted(rng, [c.weight * _density(c, hour) for c in components])]
    dwell_h = _lognormal_clipped(
        rng, component.dwell_median_h, component.dwell_sigma, DWELL_MIN_H, DWELL_MAX_H
    )
    if is_dc:
        max_w = DC_MAXIMA[_weighted(rng, [share for _, share in DC_MAXIMA])][0]
        energy = _lognormal_clipped(rng, *DC_ENERGY)
        return EvProfile(
            energy_kwh=round(energy, 3), dwell_s=dwell_h * 3600, max_w=max_w, phases=3, min_a=None
        )
    phases, amps, _ = AC_CHARGERS[_weighted(rng, [share for _, _, share in AC_CHARGERS])]
    energy = _lognormal_clipped(rng, *AC_ENERGY)
    return EvProfile(
        energy_kwh=round(energy, 3),
        dwell_s=dwell_h * 3600,
        max_w=AC_NOMINAL_V * amps * phases,
        phases=phases,
        min_a=AC_MIN_A,
    )
