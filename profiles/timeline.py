"""A ChargingProfile as a step function of absolute time (shared by compliance and dispatch)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ocpi221.chargingprofiles import ChargingProfile

__all__ = ["Steps", "as_utc", "profile_steps", "value_at"]

FloatArray = npt.NDArray[np.float64]


def as_utc(value: datetime) -> datetime:
    """Read a datetime as UTC (naive means UTC, OCPI DateTime), keeping its fraction of a second.

    Args:
        value: naive or aware.

    Returns:
        The aware UTC instant.
    """
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Steps(NamedTuple):
    """Limits of a profile in its own unit, on times in seconds from a reference instant."""

    starts: FloatArray
    """Start of each period (s from the reference), strictly increasing."""
    limits: FloatArray
    """Limit of each period, in the profile's unit."""
    end: float
    """Where the profile stops (s from the reference); `inf` without `duration`."""


def profile_steps(profile: ChargingProfile, *, anchor: datetime, ref: datetime) -> Steps | None:
    """Place a profile's periods on a time axis.

    Tolerant of what peers send: periods are sorted by `start_period` and, where several share a
    `start_period`, the last one listed wins.

    Args:
        profile: the profile (its `start_date_time` is not read; pass the right anchor).
        anchor: the instant `start_period` counts from.
        ref: the instant the returned times count from.

    Returns:
        The steps, or None when the profile has no period.
    """
    periods = profile.charging_profile_period
    if not periods:
        return None
    by_start: dict[int, float] = {}
    for period in sorted(periods, key=lambda p: p.start_period):
        by_start[period.start_period] = period.limit
    offset = (as_utc(anchor) - as_utc(ref)).total_seconds()
    starts = offset + np.fromiter(by_start.keys(), dtype=np.float64, count=len(by_start))
    limits = np.fromiter(by_start.values(), dtype=np.float64, count=len(by_start))
    end = math.inf if profile.duration is None else offset + profile.duration
    return Steps(starts=starts, limits=limits, end=end)


def value_at(steps: Steps, times: npt.ArrayLike) -> FloatArray:
    """The limit in force at each time (s from the steps' reference); NaN outside the profile.

    Args:
        steps: the profile's steps.
        times: instants, in seconds from the same reference.

    Returns:
        The limit at each instant; NaN before the first period and from `end` on.
    """
    t = np.asarray(times, dtype=np.float64)
    index = np.searchsorted(steps.starts, t, side="right") - 1
    inside = (index >= 0) & (t < steps.end)
    return np.where(inside, steps.limits[np.clip(index, 0, None)], np.nan)
