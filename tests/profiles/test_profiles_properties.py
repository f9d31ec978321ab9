"""Properties of built profiles on random plans, facts and settings (hypothesis).

Limits are read back with a deliberately naive evaluator (`limit_w_at`), independent of the
package's own timeline code.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpi221.chargingprofiles import (
    ActiveChargingProfile,
    ChargingProfile,
    ChargingProfilePeriod,
    ChargingRateUnit,
    spec_violations,
)
from profiles import (
    ComplianceVerdict,
    ElectricalFacts,
    ProfileSettings,
    assess_compliance,
    build_profile,
    coarsen_periods,
    failsafe_time,
    floor_to_step,
    w_per_unit,
)
from profiles.build import REL_EPS, lost_energy

# Every comparison with the plan allows the documented relative slack of the robust floor, twice
# over for the float product limit x (V x phases).
SLACK = 1.0 + 2 * REL_EPS
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

ac_facts = st.builds(
    ElectricalFacts,
    phases=st.sampled_from([1, 2, 3]),
    dc=st.just(False),
    voltage_v=st.sampled_from([120.0, 220.0, 230.0, 240.0]),
    max_amperage_a=st.none() | st.sampled_from([10.0, 16.0, 32.0, 63.0]),
    max_electric_power_w=st.none() | st.floats(3000.0, 50000.0),
    min_current_a=st.none() | st.floats(6.0, 10.0),
)
dc_facts = st.builds(
    ElectricalFacts,
    dc=st.just(True),
    voltage_v=st.sampled_from([400.0, 800.0, 920.0]),
    max_amperage_a=st.none() | st.sampled_from([125.0, 400.0]),
    max_electric_power_w=st.none() | st.floats(20000.0, 350000.0),
    min_power_w=st.none() | st.floats(500.0, 5000.0),
)
facts_st = ac_facts | dc_facts
settings_st = st.builds(
    ProfileSettings,
    ac_charging_rate_unit=st.sampled_from(list(ChargingRateUnit)),
    max_periods=st.integers(1, 8),
    failsafe_delay_s=st.integers(0, 20000),
    ac_floor_a=st.sampled_from([0.0, 6.0]),
)
start_st = st.builds(
    lambda seconds, micro: T0 + timedelta(seconds=seconds, microseconds=micro),
    st.integers(0, 86400),
    st.sampled_from([0, 0, 1, 250000, 999999]),
)
slot_st = st.sampled_from([1, 2, 7, 60, 900])


@st.composite
def plans(draw: st.DrawFn, facts: ElectricalFacts, n: int) -> list[float]:
    """Powers (W) that often sit exactly on, or a few ulps around, a 0.1 A or 0.1 W step."""
    per = facts.w_per_a
    value = st.one_of(
        st.floats(0.0, 60000.0),
        st.integers(0, 640).map(lambda k: k / 10 * per),
        st.integers(0, 640).map(lambda k: float(np.nextafter(k / 10 * per, 0.0))),
        st.integers(0, 640).map(lambda k: float(np.nextafter(k / 10 * per, math.inf))),
        st.just(0.0),
        st.floats(-5000.0, 0.0),
    )
    return draw(st.lists(value, min_size=n, max_size=n))


def limit_w_at(profile: ChargingProfile, facts: ElectricalFacts, at: datetime) -> float:
    """The limit in force at `at`, in W, read the simplest possible way (inf before the profile)."""
    assert profile.start_date_time is not None
    current = math.inf
    for period in profile.charging_profile_period:
        if profile.start_date_time + timedelta(seconds=period.start_period) <= at:
            current = period.limit * w_per_unit(profile.charging_rate_unit, facts)
    return current


def probe_times(
    start: datetime, slot_s: int, n: int, profiles: list[ChargingProfile], tail: datetime
) -> list[datetime]:
    """One instant inside every piece on which the plan, the tail and every profile are constant."""
    cuts = {start + timedelta(seconds=k * slot_s) for k in range(n + 1)} | {tail}
    for profile in profiles:
        assert profile.start_date_time is not None
        cuts |= {
            profile.start_date_time + timedelta(seconds=p.start_period)
            for p in profile.charging_profile_period
        }
    ordered = sorted(c for c in cuts if c >= start)
    middles = [a + (b - a) / 2 for a, b in itertools.pairwise(ordered)]
    return [t for t in middles if t >= start] + [ordered[-1] + timedelta(seconds=3600)]


def planned_w(plan: list[float], start: datetime, slot_s: int, at: datetime) -> float:
    index = int((at - start).total_seconds() // slot_s)
    return max(plan[index], 0.0) if 0 <= index < len(plan) else 0.0


@given(
    data=st.data(),
    facts=facts_st,
    config=settings_st,
    start=start_st,
    slot_s=slot_st,
    n=st.integers(0, 12),
    failsafe_w=st.floats(0.0, 30000.0),
)
@EXAMPLES
def test_a_built_profile_never_allows_more_than_the_plan_then_the_failsafe_share(
    data: st.DataObject,
    facts: ElectricalFacts,
    config: ProfileSettings,
    start: datetime,
    slot_s: int,
    n: int,
    failsafe_w: float,
) -> None:
    plan = data.draw(plans(facts, n))
    profile = build_profile(
        plan, start=start, slot_s=slot_s, facts=facts, failsafe_w=failsafe_w, settings=config
    )
    tail = failsafe_time(start, slot_s=slot_s, n_slots=n, settings=config)
    evse_max = facts.max_power_w if facts.max_power_w is not None else math.inf
    for at in probe_times(start, slot_s, n, [profile], tail):
        limit = limit_w_at(profile, facts, at)
        bound = planned_w(plan, start, slot_s, at) if at < tail else failsafe_w
        assert limit <= bound * SLACK, (at, limit, bound)
        assert limit <= evse_max * SLACK


@given(
    data=st.data(),
    facts=facts_st,
    config=settings_st,
    start=start_st,
    slot_s=slot_st,
    n=st.integers(0, 12),
    failsafe_w=st.floats(0.0, 30000.0),
)
@EXAMPLES
def test_a_built_profile_fits_the_period_budget_and_the_spec_shapes(
    data: st.DataObject,
    facts: ElectricalFacts,
    config: ProfileSettings,
    start: datetime,
    slot_s: int,
    n: int,
    failsafe_w: float,
) -> None:
    plan = data.draw(plans(facts, n))
    profile = build_profile(
        plan, start=start, slot_s=slot_s, facts=facts, failsafe_w=failsafe_w, settings=config
    )
    assert spec_violations(profile) == []
    assert 1 <= len(profile.charging_profile_period) <= config.max_periods
    assert profile.duration is None
    assert profile.charging_rate_unit == (ChargingRateUnit.W if facts.dc else config.ac_charging_rate_unit)
    assert (profile.min_charging_rate is None) == (facts.known_min_power_w is None)
    limits = [p.limit for p in profile.charging_profile_period]
    assert all(a != b for a, b in itertools.pairwise(limits)), "equal neighbours are merged"
    if profile.min_charging_rate is not None:
        assert all(limit == 0.0 or limit >= profile.min_charging_rate for limit in limits)


@given(
    data=st.data(),
    facts=facts_st,
    config=settings_st,
    start=start_st,
    slot_s=slot_st,
    n=st.integers(1, 12),
    failsafe_w=st.floats(0.0, 30000.0),
    in_watts=st.booleans(),
)
@EXAMPLES
def test_a_built_profile_reported_back_as_applied_is_compliant(
    data: st.DataObject,
    facts: ElectricalFacts,
    config: ProfileSettings,
    start: datetime,
    slot_s: int,
    n: int,
    failsafe_w: float,
    in_watts: bool,
) -> None:
    plan = data.draw(plans(facts, n))
    profile = build_profile(
        plan, start=start, slot_s=slot_s, facts=facts, failsafe_w=failsafe_w, settings=config
    )
    assert profile.start_date_time is not None
    late_s = data.draw(st.integers(0, n * slot_s - 1), label="late_s")
    # The CPO reports it computed `late_s` after the profile start, periods relative to that, maybe
    # converted to W (ocpi-notes §10.12 relative form), and echoes our absolute start inside.
    computed = profile.start_date_time + timedelta(seconds=late_s)
    per = w_per_unit(profile.charging_rate_unit, facts) if in_watts else 1.0
    periods: list[ChargingProfilePeriod] = []
    for period, following in itertools.zip_longest(
        profile.charging_profile_period, profile.charging_profile_period[1:]
    ):
        if following is not None and following.start_period <= late_s:
            continue
        periods.append(
            ChargingProfilePeriod(
                start_period=max(period.start_period - late_s, 0), limit=round(period.limit * per, 1)
            )
        )
    applied = ActiveChargingProfile(
        start_date_time=computed,
        charging_profile=ChargingProfile(
            start_date_time=profile.start_date_time,
            charging_rate_unit=ChargingRateUnit.W if in_watts else profile.charging_rate_unit,
            charging_profile_period=periods,
        ),
    )
    result = assess_compliance(
        applied, plan, start=start, slot_s=slot_s, facts=facts, failsafe_w=failsafe_w, settings=config
    )
    assert result.verdict is ComplianceVerdict.COMPLIANT, result
    assert result.worst_excess_w <= config.compliance_over_w
    assert result.compliant_fraction == 1.0


@st.composite
def sites(
    draw: st.DrawFn,
) -> tuple[list[ElectricalFacts], list[list[float]], list[float], list[float], float]:
    """A site: facts and plans of its sessions, the planned site limit per slot, failsafe shares."""
    n = draw(st.integers(1, 10))
    sessions = draw(st.integers(1, 5))
    facts = [draw(facts_st) for _ in range(sessions)]
    limit_w = draw(st.lists(st.floats(0.0, 100000.0), min_size=n, max_size=n))
    raw = [draw(plans(f, n)) for f in facts]
    # Scale every slot so the sessions' sum stays within the planned site limit, as the LP does.
    plans_w = [[0.0] * n for _ in facts]
    for k in range(n):
        total = sum(max(row[k], 0.0) for row in raw)
        scale = min(1.0, limit_w[k] / total) if total > 0 else 1.0
        for i, row in enumerate(raw):
            plans_w[i][k] = row[k] * scale
    failsafe_site_w = draw(st.floats(0.0, 50000.0))
    weights = draw(st.lists(st.floats(0.0, 1.0), min_size=sessions, max_size=sessions))
    shares = [failsafe_site_w * w / max(sum(weights), 1.0) for w in weights]
    return facts, plans_w, limit_w, shares, failsafe_site_w


@given(site=sites(), config=settings_st, start=start_st, slot_s=slot_st)
@EXAMPLES
def test_the_sum_of_a_sites_profiles_stays_within_the_site_plan_then_the_site_failsafe_limit(
    site: tuple[list[ElectricalFacts], list[list[float]], list[float], list[float], float],
    config: ProfileSettings,
    start: datetime,
    slot_s: int,
) -> None:
    facts, plans_w, limit_w, shares, failsafe_site_w = site
    n = len(limit_w)
    built = [
        build_profile(plan, start=start, slot_s=slot_s, facts=f, failsafe_w=share, settings=config)
        for f, plan, share in zip(facts, plans_w, shares, strict=True)
    ]
    tail = failsafe_time(start, slot_s=slot_s, n_slots=n, settings=config)
    for at in probe_times(start, slot_s, n, built, tail):
        total = sum(limit_w_at(p, f, at) for p, f in zip(built, facts, strict=True))
        bound = limit_w[int((at - start).total_seconds() // slot_s)] if at < tail else failsafe_site_w
        assert total <= bound * SLACK + 1e-6, (at, total, bound)


@given(
    tenths=st.integers(0, 10**7),
    per=st.sampled_from([1.0, 230.0, 460.0, 690.0, 660.0, 720.0, 400.0]),
    nudge=st.integers(-3, 3),
)
@settings(max_examples=300, deadline=None)
def test_rounding_down_keeps_whole_tenths_and_never_exceeds_the_input_by_more_than_the_epsilon(
    tenths: int, per: float, nudge: int
) -> None:
    power_w = tenths / 10 * per
    for _ in range(abs(nudge)):  # a few ulps either side of the exact product
        power_w = float(np.nextafter(power_w, math.inf if nudge > 0 else 0.0))
    limit = float(floor_to_step(power_w / per))
    assert limit * per <= power_w * SLACK
    assert limit == tenths / 10, "a few ulps off a whole tenth still floors to that tenth"


def brute_force_loss(starts: list[int], limits: list[float], budget: int) -> float:
    """The least loss over every grouping of contiguous periods into their minimum."""
    m, best = len(limits), math.inf
    for cuts in itertools.chain.from_iterable(itertools.combinations(range(1, m), k) for k in range(budget)):
        bounds = [0, *cuts, m]
        new_s = [starts[a] for a in bounds[:-1]]
        new_l = [min(limits[a:b]) for a, b in itertools.pairwise(bounds)]
        best = min(best, lost_energy(starts, limits, new_s, new_l))
    return best


@given(
    limits=st.lists(st.integers(0, 30).map(lambda k: k / 2), min_size=1, max_size=8).filter(
        lambda ls: all(a != b for a, b in itertools.pairwise(ls))
    ),
    durations=st.lists(st.integers(1, 2000), min_size=8, max_size=8),
    budget=st.integers(1, 8),
)
@settings(max_examples=300, deadline=None)
def test_coarsening_loses_the_least_energy_of_all_groupings_and_never_raises_a_limit(
    limits: list[float], durations: list[int], budget: int
) -> None:
    starts = [0, *itertools.accumulate(durations[: len(limits) - 1])]
    new_s, new_l = coarsen_periods(starts, limits, budget)
    assert len(new_l) <= budget
    assert new_s[0] == 0 and all(a < b for a, b in itertools.pairwise(new_s))
    loss = lost_energy(starts, limits, new_s, new_l)
    assert loss >= 0
    best = brute_force_loss(starts, limits, budget)
    assert loss == best or math.isclose(loss, best, rel_tol=1e-9, abs_tol=1e-6)
    if budget > 1:
        assert new_l[-1] == limits[-1], "the open-ended last limit is kept"
