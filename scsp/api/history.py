"""A site's past per time bucket, and the fleet at a glance: what DSO dashboards draw.

Per bucket of a past window (`site_history`), every value a time-weighted mean over the bucket, W:
- `limit_w`, `planned_w`, `fixed_load_w`: of the plan in force at each moment (the newest plan made
  by then, at its slot for that moment): the limit the planner used, the power it gave the sessions
  it steers, the load it could not steer;
- `applied_w`: the sum of what the charge points reported applying (each session's newest
  ActiveChargingProfile received by then, within its duration, capped at its EVSE's maximum);
- `delivered_w`: the energy the CPO reported delivered (session `kwh`, interpolated between its
  reports) over the bucket's length.
None where nothing was known (no plan yet, no report). Buckets are aligned to multiples of their
length in unix time, so repeated polls see the same edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np
import numpy.typing as npt

from ocpi221.chargingprofiles import ChargingRateUnit
from profiles import active_anchor
from profiles.timeline import profile_steps, value_at
from scsp.records.commands import ActiveProfileRecord
from scsp.records.plans import StoredPlan
from scsp.records.sessions import SessionKey
from scsp.store import Store

FloatArray = npt.NDArray[np.float64]

# Moments sampled per bucket for the time-weighted means (at most): enough for plan slots of a minute.
SAMPLES_PER_BUCKET = 10
# An ActiveChargingProfile received this long before the window may still be in force at its start (s).
REPORT_LOOKBACK_S = 3600
# W per A assumed for an AC report of a session without a plan row (3 phases at 230 V).
DEFAULT_W_PER_A = 690.0


class HistoryBucket(msgspec.Struct, kw_only=True):
    """One bucket of a site's past: means over [start, start + bucket_s), W (None: nothing known)."""

    start: datetime
    limit_w: float | None
    planned_w: float | None
    applied_w: float | None
    delivered_w: float | None
    fixed_load_w: float | None


class HistoryPoint(msgspec.Struct, kw_only=True):
    """One planning cycle of a site, summarised at the slot of the moment it was made."""

    plan_id: int
    created_at: datetime
    status: str
    limit_w: float
    planned_w: float
    fixed_load_w: float


class SiteHistoryOut(msgspec.Struct, kw_only=True):
    """A site's past: per bucket the limit, plan, applied and delivered power; per planning cycle its plan."""

    site_id: str
    since: datetime  # the first bucket's start
    until: datetime  # the end of the last bucket (may be after the moment of the request)
    bucket_s: int
    buckets: list[HistoryBucket]
    cycles: list[HistoryPoint]


def _whole(value: float) -> float | None:
    """W to whole watts; NaN (nothing known) to None."""
    return None if math.isnan(value) else float(round(value))


def _plan_values(plans: Sequence[StoredPlan], times: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Limit, planned power and fixed load of the plan in force at each time (unix s); NaN where none."""
    limit, planned, fixed = (np.full(times.shape, np.nan) for _ in range(3))
    if not plans:
        return limit, planned, fixed
    created = np.array([p.created_at.timestamp() for p in plans])
    which = np.searchsorted(created, times, side="right") - 1
    for index, plan in enumerate(plans):
        mask = which == index
        if not mask.any() or plan.n_slots == 0:
            continue
        slot = np.floor((times[mask] - plan.start.timestamp()) / plan.slot_s).astype(np.int64)
        inside = (slot >= 0) & (slot < plan.n_slots)
        spots = np.flatnonzero(mask)[inside]
        for out, values in ((limit, plan.limit_w), (planned, plan.site_power_w), (fixed, plan.fixed_load_w)):
            out[spots] = np.asarray(values, dtype=np.float64)[slot[inside]]
    return limit, planned, fixed


def _applied(store: Store, records: Sequence[ActiveProfileRecord], times: FloatArray,
             latest: StoredPlan | None = None) -> FloatArray:
    """The sum of what the charge points reported applying at each time (unix s), W; NaN where none reported.

    A session's electrical facts come from its row in `latest` (the site's newest plan), else from the
    newest plan that has it.
    """
    by_session: dict[SessionKey, list[ActiveProfileRecord]] = {}
    for record in records:
        by_session.setdefault(record.key, []).append(record)
    total = np.zeros(times.shape)
    known = np.zeros(times.shape, dtype=bool)
    ref = datetime.fromtimestamp(0, UTC)
    for key, reports in by_session.items():
        row = latest.row(key) if latest is not None else None
        if row is None:
            found = store.plans.row(key)
            row = found[1] if found is not None else None
        w_per_a = row.facts.w_per_a if row is not None else DEFAULT_W_PER_A
        max_w = row.evse_max_w if row is not None else math.inf
        stored = store.sessions.get(key)
        ended = stored.session.end_date_time if stored is not None else None
        control = store.commands.control(key)
        sent = [p for p in (control.accepted_profile, control.sent_profile, row.profile if row else None)
                if p is not None]
        received = np.array([r.received_at.timestamp() for r in reports])
        which = np.searchsorted(received, times, side="right") - 1
        for index, report in enumerate(reports):
            mask = which == index
            if ended is not None:
                mask &= times < ended.timestamp()
            if not mask.any():
                continue
            inner = report.profile.charging_profile
            steps = profile_steps(inner, anchor=active_anchor(report.profile, sent), ref=ref)
            if steps is None:
                continue
            per_unit = 1.0 if inner.charging_rate_unit == ChargingRateUnit.W else w_per_a
            values = np.minimum(value_at(steps, times[mask]) * per_unit, max_w)
            spots = np.flatnonzero(mask)
            good = ~np.isnan(values)
            total[spots[good]] += values[good]
            known[spots[good]] = True
    return np.where(known, total, np.nan)


def _delivered(energy: dict[SessionKey, list[tuple[datetime, float]]], edges: FloatArray, now: float) -> FloatArray:
    """Mean delivered power per bucket between consecutive edges (unix s), W; NaN for buckets not begun.

    Known only up to the newest report of any session: the bucket that holds it is averaged over
    its part up to that report, not up to now (energy not reported yet is not "nothing delivered").
    """
    newest = max((samples[-1][0].timestamp() for samples in energy.values() if samples), default=None)
    if newest is not None:
        now = min(now, newest)
    delivered_kwh = np.zeros(len(edges) - 1)
    for samples in energy.values():
        at = np.array([s[0].timestamp() for s in samples])
        # A CPO's energy never goes down within a session; a lower report is read as no progress.
        kwh = np.maximum.accumulate(np.array([s[1] for s in samples]))
        cumulative = np.interp(np.minimum(edges, now), at, kwh)
        delivered_kwh += np.diff(cumulative)
    elapsed = np.clip(np.minimum(edges[1:], now) - edges[:-1], 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        watts = delivered_kwh * 3.6e6 / elapsed
    return np.where(elapsed > 0, watts, np.nan)


def bucket_edges(since: datetime, until: datetime, bucket_s: int) -> FloatArray:
    """Bucket edges (unix s) from `since` rounded down to a multiple of `bucket_s` to past `until`."""
    first = math.floor(since.timestamp() / bucket_s) * bucket_s
    count = max(1, math.ceil((until.timestamp() - first) / bucket_s))
    return first + bucket_s * np.arange(count + 1, dtype=np.float64)


def site_history(store: Store, site: str, *, since: datetime, until: datetime, bucket_s: int,
                 now: datetime) -> SiteHistoryOut:
    """A site's buckets over [since, until] (module docstring) and its planning cycles."""
    edges = bucket_edges(since, until, bucket_s)
    start, end = (datetime.fromtimestamp(float(e), UTC) for e in (edges[0], edges[-1]))
    n = len(edges) - 1
    m = max(1, min(SAMPLES_PER_BUCKET, bucket_s // 30))
    step = bucket_s / m
    # Sub-sample midpoints, bucket by bucket: shape (n * m,), reshaped to (n, m) for the means.
    times = (edges[:-1, None] + step * (np.arange(m) + 0.5)[None, :]).ravel()
    plans = store.plans.in_force(site, since=start, until=end)
    limit, planned, fixed = _plan_values(plans, times)
    records = store.commands.active_profiles_at_site(site, since=start - timedelta(seconds=REPORT_LOOKBACK_S),
                                                     until=end)
    applied = _applied(store, records, times, store.plans.latest(site) if records else None)
    # Moments still to come are not history: nothing is known there yet.
    future = times > now.timestamp()
    for values in (limit, planned, fixed, applied):
        values[future] = np.nan
    delivered = _delivered(store.sessions.energy_history(site, since=start, until=end), edges, now.timestamp())

    def mean(values: FloatArray) -> FloatArray:
        grid = values.reshape(n, m)
        counted = (~np.isnan(grid)).sum(axis=1)
        sums = np.nansum(grid, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(counted > 0, sums / counted, np.nan)

    columns = [mean(limit), mean(planned), mean(applied), delivered, mean(fixed)]
    buckets = [HistoryBucket(start=datetime.fromtimestamp(float(edges[k]), UTC),
                             limit_w=_whole(float(columns[0][k])), planned_w=_whole(float(columns[1][k])),
                             applied_w=_whole(float(columns[2][k])), delivered_w=_whole(float(columns[3][k])),
                             fixed_load_w=_whole(float(columns[4][k])))
               for k in range(n)]
    cycles = []
    for plan in plans:
        if plan.created_at < start:
            continue
        at = np.array([plan.created_at.timestamp()])
        lim, pw, fx = (float(v[0]) for v in _plan_values([plan], at))
        cycles.append(HistoryPoint(plan_id=plan.id, created_at=plan.created_at, status=plan.status,
                                   limit_w=_whole(lim) or 0.0, planned_w=_whole(pw) or 0.0,
                                   fixed_load_w=_whole(fx) or 0.0))
    return SiteHistoryOut(site_id=site, since=start, until=end, bucket_s=bucket_s, buckets=buckets, cycles=cycles)


def plan_now(plan: StoredPlan | None, now: datetime) -> tuple[float | None, float | None, float | None]:
    """Limit, planned power and fixed load of a plan at `now` (None when the plan does not cover it)."""
    if plan is None:
        return None, None, None
    values = _plan_values([plan], np.array([now.timestamp()]))
    return (_whole(float(values[0][0])), _whole(float(values[1][0])), _whole(float(values[2][0])))


class FleetSiteOut(msgspec.Struct, kw_only=True):
    """One site of a fleet at a glance, at the moment of the request."""

    site_id: str
    name: str | None
    time_zone: str | None
    limit_w_now: float | None  # of the newest plan, at its slot for now
    planned_w_now: float | None
    fixed_load_w_now: float | None
    applied_w_now: float | None  # what the charge points report applying now (None: no report)
    delivered_w_recent: float | None  # the mean delivered power of the last sparkline bucket
    planned_peak_w: float | None  # the highest planned + fixed load from now to the plan's end
    sessions: int  # sessions in the newest plan
    managed_sessions: int  # of which we steer
    compliance: dict[str, int]  # newest verdict per session: COMPLIANT / OVER_PLAN / UNDER_PLAN / NO_OVERLAP counts
    plan_id: int | None
    plan_status: str | None
    planned_at: datetime | None  # when the newest plan was made (its age: now - this)
    sparkline_start: datetime
    sparkline_bucket_s: int
    sparkline_delivered_w: list[float | None]  # delivered power per bucket over the window
    sparkline_limit_w: list[float | None]


class FleetOut(msgspec.Struct, kw_only=True):
    """Every site in a key's scope and their sums now (no clock in the body: its ETag holds while nothing changes)."""

    sites: list[FleetSiteOut]
    limit_w_now: float  # sums over the sites that know the value
    planned_w_now: float
    applied_w_now: float
    sessions: int
    managed_sessions: int
    over_plan: int
    under_plan: int


SPARKLINE_BUCKETS = 24


def fleet_site(store: Store, site: str, *, name: str | None, time_zone: str | None, now: datetime,
               hours: float) -> FleetSiteOut:
    """One site's row of the fleet summary."""
    plan = store.plans.latest(site)
    limit, planned, fixed = plan_now(plan, now)
    bucket_s = max(60, int(hours * 3600 / SPARKLINE_BUCKETS))
    history = site_history(store, site, since=now - timedelta(hours=hours), until=now, bucket_s=bucket_s, now=now)
    records = store.commands.active_profiles_at_site(site, since=now - timedelta(seconds=REPORT_LOOKBACK_S),
                                                     until=now)
    applied = _whole(float(_applied(store, records, np.array([now.timestamp()]), plan)[0]))
    peak = None
    verdicts: dict[str, int] = {}
    if plan is not None and plan.n_slots:
        first = max(0, min(plan.n_slots - 1, int((now - plan.start).total_seconds() // plan.slot_s)))
        ahead = np.asarray(plan.site_power_w[first:]) + np.asarray(plan.fixed_load_w[first:])
        peak = _whole(float(ahead.max())) if ahead.size else None
        for record in store.commands.latest_active_profiles([r.key for r in plan.sessions]).values():
            if record.verdict is not None:
                verdicts[record.verdict.value] = verdicts.get(record.verdict.value, 0) + 1
    delivered = [b.delivered_w for b in history.buckets]
    recent = next((d for d in reversed(delivered) if d is not None), None)
    return FleetSiteOut(
        site_id=site, name=name, time_zone=time_zone, limit_w_now=limit, planned_w_now=planned,
        fixed_load_w_now=fixed, applied_w_now=applied, delivered_w_recent=recent, planned_peak_w=peak,
        sessions=len(plan.sessions) if plan else 0,
        managed_sessions=sum(1 for s in plan.sessions if s.controllable) if plan else 0,
        compliance=verdicts, plan_id=plan.id if plan else None, plan_status=plan.status if plan else None,
        planned_at=plan.created_at if plan else None,
        sparkline_start=history.since, sparkline_bucket_s=bucket_s, sparkline_delivered_w=delivered,
        sparkline_limit_w=[b.limit_w for b in history.buckets])


def fleet(store: Store, sites: Sequence[tuple[str, str | None, str | None]], *, now: datetime,
          hours: float) -> FleetOut:
    """The fleet summary of `sites` (id, name, time zone)."""
    rows = [fleet_site(store, s, name=name, time_zone=tz, now=now, hours=hours) for s, name, tz in sites]
    return FleetOut(
        sites=rows, limit_w_now=sum(r.limit_w_now or 0.0 for r in rows),
        planned_w_now=sum(r.planned_w_now or 0.0 for r in rows),
        applied_w_now=sum(r.applied_w_now or 0.0 for r in rows), sessions=sum(r.sessions for r in rows),
        managed_sessions=sum(r.managed_sessions for r in rows),
        over_plan=sum(r.compliance.get("OVER_PLAN", 0) for r in rows),
        under_plan=sum(r.compliance.get("UNDER_PLAN", 0) for r in rows))
