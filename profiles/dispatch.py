"""When to send a new profile: material differences and the approaching failsafe tail (pure).

The dispatcher sends SetChargingProfile only when `materially_different(last_accepted, new)` or
`resend_due(last_accepted)`; OCPI defines no request rate and a CPO may answer TOO_OFTEN
(ocpi-notes §10.13), so unchanged profiles are not re-sent.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from ocpi221.chargingprofiles import ChargingProfile, ChargingRateUnit
from profiles.model import ProfileSettings
from profiles.timeline import as_utc, profile_steps, value_at

__all__ = ["materially_different", "resend_due"]


def _material_step(unit: ChargingRateUnit, settings: ProfileSettings) -> float:
    return settings.material_a if unit is ChargingRateUnit.A else settings.material_w


def materially_different(
    old: ChargingProfile, new: ChargingProfile, settings: ProfileSettings, *, now: datetime
) -> bool:
    """Whether `new` must replace `old` (the profile the charge point holds) now.

    Material, in this order:

    - a different unit or `min_charging_rate`, or a relative profile (no `start_date_time`) on
      either side that is not identical;
    - a lower last (open-ended) limit: the session's failsafe share went down, and keeping the old
      one could take the site over its failsafe limit if the service stops;
    - between `now` and the old profile's failsafe time (`old.start_date_time + failsafe_delay_s`):
      any decrease lasting more than `material_s` in total (an unsent decrease leaves the charge
      point allowed above the new plan, which the site sum relies on), or an increase of more than
      `material_a` / `material_w` lasting more than `material_s`. Where a profile does not cover a
      time (before its first period, after its `duration`) it counts as no limit at all.

    Later times are left to `resend_due`: comparing them would flag every cycle, as each new
    profile moves its failsafe tail later.

    Args:
        old: the last profile the charge point accepted.
        new: the profile built from the current plan.
        settings: the party's settings (thresholds, `failsafe_delay_s`).
        now: the current time.

    Returns:
        True when `new` should be sent.
    """
    if old.charging_rate_unit != new.charging_rate_unit or old.min_charging_rate != new.min_charging_rate:
        return True
    if old.start_date_time is None or new.start_date_time is None:
        return old != new
    if not old.charging_profile_period or not new.charging_profile_period:
        return bool(new.charging_profile_period) or old != new
    ref = as_utc(now)
    old_steps = profile_steps(old, anchor=old.start_date_time, ref=ref)
    new_steps = profile_steps(new, anchor=new.start_date_time, ref=ref)
    assert old_steps is not None and new_steps is not None  # both have periods (checked above)
    old_tail = old_steps.limits[-1] if math.isinf(old_steps.end) else math.inf
    new_tail = new_steps.limits[-1] if math.isinf(new_steps.end) else math.inf
    if new_tail < old_tail:
        return True
    window_end = (old.start_date_time + timedelta(seconds=settings.failsafe_delay_s) - ref).total_seconds()
    if window_end <= 0:
        return False
    cuts = np.concatenate(
        (old_steps.starts, new_steps.starts, [old_steps.end, new_steps.end, 0.0, window_end])
    )
    cuts = np.unique(cuts[(cuts >= 0.0) & (cuts <= window_end)])
    span = np.diff(cuts)
    middle = (cuts[:-1] + cuts[1:]) / 2.0
    old_at = np.nan_to_num(value_at(old_steps, middle), nan=math.inf)
    new_at = np.nan_to_num(value_at(new_steps, middle), nan=math.inf)
    decrease = new_at < old_at
    with np.errstate(invalid="ignore"):  # inf - inf where neither covers: not an increase
        increase = (new_at - old_at) > _material_step(new.charging_rate_unit, settings)
    return bool(span[decrease].sum() > settings.material_s or span[increase].sum() > settings.material_s)


def resend_due(profile: ChargingProfile, settings: ProfileSettings, *, now: datetime) -> bool:
    """Whether a profile must be re-sent because its failsafe tail is nearer than the margin.

    The failsafe time is taken as `start_date_time + failsafe_delay_s`, not as the start of the
    last period: merging may start the last period earlier when the plan already equals the
    failsafe share, and re-sending would not move it. A profile of one period is a constant limit
    that never changes, so nothing is due for it.

    Args:
        profile: the last profile the charge point accepted.
        settings: the party's settings (`failsafe_delay_s`, `resend_margin_s`).
        now: the current time.

    Returns:
        True from `failsafe_delay_s - resend_margin_s` after the profile's start on.
    """
    if profile.start_date_time is None or len(profile.charging_profile_period) <= 1:
        return False
    due = profile.start_date_time + timedelta(seconds=settings.failsafe_delay_s - settings.resend_margin_s)
    return as_utc(now) >= due
