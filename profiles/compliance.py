"""Compliance: compare what a charge point applied (ActiveChargingProfile) with the plan (pure).

Two references, both in W, on the plan's slot grid:

- the **plan** (the upper reference): the planned power of the slot, and from `failsafe_time` on
  the session's failsafe share, because that is what the profile we send allows there. An applied
  limit above it is OVER_PLAN: the site may exceed what was planned.
- the **expected profile** (the lower reference): what `build_profile` sends for the same inputs,
  i.e. the plan after rounding down, the minimum-rate rule and the period budget. An applied limit
  below it is UNDER_PLAN: something else (a local limit, another party's profile, a CPO that
  dropped our profile) holds the EV back. Our own rounding is not counted against the CPO.

Times: mod_charging_profiles.asciidoc "ActiveChargingProfile.start_date_time": "Date and time at
which the Charge Point has calculated this ActiveChargingProfile. All time measurements within the
profile are relative to this timestamp." The periods are therefore placed relative to that
timestamp whether or not the inner `charging_profile.start_date_time` is set (ocpi-notes §10.12),
with one documented exception (`active_anchor`): a copy of a profile we sent, the inner absolute
`start_date_time` included, is read at that inner time. Some hubs stamp `start_date_time` with the
time of the GET and copy our profile unchanged; read to the letter, that copy would be shifted by
the time since we sent it and pass for an overshoot of our own plan. An inner `duration` ends the
known part; without it the last period lasts on.

Site sums (`site_load_w`): every session of a site appears once, by what its charge point reports
where it reports, else by what the plan gives it (steered sessions their planned power, sessions we
do not steer the fixed load they were planned at). Adding the plan's fixed load to a sum that
already holds the fixed sessions' reports counts them twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

import msgspec
import numpy as np

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile
from profiles.build import build_profile, failsafe_time, w_per_unit
from profiles.model import ElectricalFacts, ProfileSettings
from profiles.timeline import as_utc, profile_steps, value_at

__all__ = ["Compliance", "ComplianceVerdict", "SiteLoad", "active_anchor", "assess_compliance", "site_load_w"]

MIN_JUDGED_S = 1.0
"""Pieces of time shorter than this (s) are not judged. OCPI DateTimes arrive in whole seconds
(fractions are truncated on decoding), so a step that appears less than a second early or late is
truncation, not a limit the charge point holds."""

_OUTPUT_DECIMALS = 3
"""Per-slot figures are rounded to mW (3 decimals of W): far below every tolerance, and it keeps
the float noise of time-weighted means out of dashboards."""


class ComplianceVerdict(StrEnum):
    """How the applied limits compare with the plan over the time both cover."""

    COMPLIANT = "COMPLIANT"
    OVER_PLAN = "OVER_PLAN"
    UNDER_PLAN = "UNDER_PLAN"
    NO_OVERLAP = "NO_OVERLAP"


class Compliance(msgspec.Struct, frozen=True, kw_only=True):
    """The result of `assess_compliance`; per-slot lists cover slots `first_slot` onwards."""

    verdict: ComplianceVerdict
    first_slot: int = 0
    """Index (in the plan) of the first slot the applied profile covers."""
    applied_w: list[float] = []
    """Per slot: time-weighted mean applied limit (W) over the covered part of the slot."""
    excess_w: list[float] = []
    """Per slot: the most the applied limit stood above the plan (W, >= 0)."""
    shortfall_w: list[float] = []
    """Per slot: the most the applied limit stood below the expected profile (W, >= 0)."""
    worst_excess_w: float = 0.0
    """The largest value of `excess_w` (W)."""
    compliant_fraction: float = 0.0
    """Share of the covered time, weighted by max(plan, applied) power (i.e. energy), in which the
    applied limit is within tolerance of both references; 1.0 when that weight is zero, 0.0 when
    nothing overlaps."""
    shows_evse_maximum: bool = False
    """Every covered applied limit is at the EVSE maximum: the CPO reports that no profile is
    active ("...SHALL reflect this by showing the maximum charging capacity of the EVSE")."""


def _periods(profile: ChargingProfile) -> list[tuple[int, float]]:
    return [(p.start_period, p.limit) for p in profile.charging_profile_period]


def active_anchor(active: ActiveChargingProfile, sent: Sequence[ChargingProfile]) -> datetime:
    """The instant the periods of an ActiveChargingProfile count from.

    `active.start_date_time` (the letter of mod_charging_profiles), unless the inner profile is a
    copy of one of the profiles we `sent` for the session: the same absolute `start_date_time`,
    unit and periods. Such a copy says what we asked for, from when we asked for it.
    """
    inner = active.charging_profile
    if inner.start_date_time is not None:
        for profile in sent:
            if (profile.start_date_time is not None and as_utc(profile.start_date_time) == as_utc(inner.start_date_time)
                    and profile.charging_rate_unit == inner.charging_rate_unit
                    and _periods(profile) == _periods(inner)):
                return inner.start_date_time
    return active.start_date_time


class SiteLoad(msgspec.Struct, frozen=True, kw_only=True):
    """A site's load per slot (W), each session counted once (`site_load_w`)."""

    reported_w: list[float | None]
    """What the sessions that report sum to (None where none reports)."""
    unreported_w: list[float]
    """What the plan gives the sessions that do not report for that slot."""
    total_w: list[float]
    """Their sum: the site's load as far as it is known."""


def site_load_w(planned_w: Sequence[Sequence[float]], reported_w: Sequence[Sequence[float | None] | None],
                n_slots: int) -> SiteLoad:
    """Sum a site's sessions slot by slot, each once: its report where it has one, else its plan.

    Args:
        planned_w: per session, what the plan gives it per slot (W): planned power for a session we
            steer, its fixed load for one we do not.
        reported_w: per session (same order), what its charge point reports applying per slot (W,
            None where it says nothing), or None when it reported nothing.
        n_slots: the slot count of the plan.
    """
    reported = np.zeros(n_slots)
    any_report = np.zeros(n_slots, dtype=bool)
    unreported = np.zeros(n_slots)
    for plan, report in zip(planned_w, reported_w, strict=True):
        plan_row = np.zeros(n_slots)
        plan_row[:min(len(plan), n_slots)] = np.asarray(plan, dtype=np.float64)[:n_slots]
        if report is None:
            unreported += plan_row
            continue
        values = np.array([np.nan if v is None else float(v) for v in report][:n_slots] +
                          [np.nan] * max(0, n_slots - len(report)))
        known = ~np.isnan(values)
        reported += np.where(known, values, 0.0)
        any_report |= known
        unreported += np.where(known, 0.0, plan_row)
    total = reported + unreported
    return SiteLoad(reported_w=[float(r) if k else None for r, k in zip(reported, any_report, strict=True)],
                    unreported_w=unreported.tolist(), total_w=total.tolist())


def assess_compliance(
    active: ActiveChargingProfile,
    power_w: Sequence[float],
    *,
    start: datetime,
    slot_s: int,
    facts: ElectricalFacts,
    failsafe_w: float,
    settings: ProfileSettings,
    anchor: datetime | None = None,
) -> Compliance:
    """Judge an ActiveChargingProfile against the plan row the session's profile was built from.

    Args:
        active: the profile as received from the CPO (async GET result or Sender PUT).
        power_w: the planned power per slot (W), as given to `build_profile`.
        start: start of the slot grid, as given to `build_profile`.
        slot_s: slot length (s).
        facts: the session's electrical facts (to convert A to W and know the EVSE maximum).
        failsafe_w: the session's failsafe share (W), as given to `build_profile`.
        settings: the party's settings, including the compliance tolerances.
        anchor: where the applied periods count from (`active_anchor`); default the letter's,
            `active.start_date_time`.

    Returns:
        The verdict, in order of precedence: NO_OVERLAP (no period, or no common time), OVER_PLAN
        (above the plan by more than `compliance_over_w` for at least a second), UNDER_PLAN (below
        the expected profile by more than `compliance_under_w` and `compliance_under_ratio`), else
        COMPLIANT; with the per-slot figures.
    """
    plan = np.clip(np.asarray(power_w, dtype=np.float64).reshape(-1), 0.0, None)
    horizon_s = float(len(plan) * slot_s)
    steps = profile_steps(active.charging_profile, anchor=anchor or active.start_date_time, ref=start)
    if steps is None or horizon_s == 0:
        return Compliance(verdict=ComplianceVerdict.NO_OVERLAP)
    cover_from, cover_to = max(0.0, float(steps.starts[0])), min(horizon_s, steps.end)
    if cover_to <= cover_from:
        return Compliance(verdict=ComplianceVerdict.NO_OVERLAP)

    expected = build_profile(
        power_w, start=start, slot_s=slot_s, facts=facts, failsafe_w=failsafe_w, settings=settings
    )
    assert expected.start_date_time is not None  # build_profile always sets it
    expected_steps = profile_steps(expected, anchor=expected.start_date_time, ref=start)
    assert expected_steps is not None  # build_profile always sends at least one period
    grid_start = as_utc(start)
    tail_from = (
        failsafe_time(grid_start, slot_s=slot_s, n_slots=len(plan), settings=settings) - grid_start
    ).total_seconds()

    cuts = np.concatenate(
        (
            np.arange(len(plan) + 1, dtype=np.float64) * slot_s,
            steps.starts,
            expected_steps.starts,
            [tail_from, cover_from, cover_to],
        )
    )
    cuts = np.unique(cuts[(cuts >= cover_from) & (cuts <= cover_to)])
    begin, end = cuts[:-1], cuts[1:]
    span = end - begin
    middle = (begin + end) / 2.0
    slot = np.minimum((begin // slot_s).astype(np.int64), len(plan) - 1)

    applied = value_at(steps, middle) * w_per_unit(active.charging_profile.charging_rate_unit, facts)
    upper = np.where(middle < tail_from, plan[slot], failsafe_w)
    lower = value_at(expected_steps, middle) * w_per_unit(expected.charging_rate_unit, facts)
    judged = span >= MIN_JUDGED_S
    above = np.where(judged, np.maximum(applied - upper, 0.0), 0.0)
    below = np.where(judged, np.maximum(lower - applied, 0.0), 0.0)
    over = above > settings.compliance_over_w
    under = below > np.maximum(settings.compliance_under_w, settings.compliance_under_ratio * lower)

    first, last = int(slot[0]), int(slot[-1])
    local = slot - first
    count = last - first + 1
    covered = np.bincount(local, weights=span, minlength=count)
    applied_mean = np.bincount(local, weights=applied * span, minlength=count) / np.where(
        covered > 0, covered, 1
    )
    excess = np.zeros(count)
    np.maximum.at(excess, local, above)
    shortfall = np.zeros(count)
    np.maximum.at(shortfall, local, below)

    weight = np.maximum(upper, applied) * span
    total = float(weight.sum())
    fraction = float(weight[~(over | under)].sum()) / total if total > 0 else 1.0
    evse_max = facts.max_power_w
    at_maximum = evse_max is not None and bool(
        np.all(
            applied >= evse_max - max(settings.compliance_under_w, settings.compliance_under_ratio * evse_max)
        )
    )
    if over.any():
        verdict = ComplianceVerdict.OVER_PLAN
    elif under.any():
        verdict = ComplianceVerdict.UNDER_PLAN
    else:
        verdict = ComplianceVerdict.COMPLIANT
    return Compliance(
        verdict=verdict,
        first_slot=first,
        applied_w=np.round(applied_mean, _OUTPUT_DECIMALS).tolist(),
        excess_w=np.round(excess, _OUTPUT_DECIMALS).tolist(),
        shortfall_w=np.round(shortfall, _OUTPUT_DECIMALS).tolist(),
        worst_excess_w=round(float(excess.max()), _OUTPUT_DECIMALS),
        compliant_fraction=fraction,
        shows_evse_maximum=at_maximum,
    )
