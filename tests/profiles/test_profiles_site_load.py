"""A site's load with each session counted once (`site_load_w`), and where an ActiveChargingProfile's
periods count from (`active_anchor`) for both shapes of ActiveChargingProfile met in the field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from profiles import (
    ComplianceVerdict,
    ElectricalFacts,
    ProfileSettings,
    active_anchor,
    assess_compliance,
    build_profile,
    site_load_w,
)

# -- site_load_w ----------------------------------------------------------------------------------

Report = list[float | None] | None

watts = st.floats(min_value=0.0, max_value=50_000.0, allow_nan=False, allow_infinity=False)
# A plan row as long as the plan, or (tolerated) shorter or longer.
plan_rows = st.lists(watts, min_size=0, max_size=10)
# A report: nothing at all, or per slot a value or a hole, shorter or longer than the plan.
reports = st.none() | st.lists(st.none() | watts, min_size=0, max_size=10)
LABELS = ("steered", "fixed", "released", "unreachable")  # only "steered" is ours; the others are fixed load


@st.composite
def sites(draw: st.DrawFn) -> tuple[int, list[str], list[list[float]], list[Report]]:
    n_slots = draw(st.integers(min_value=1, max_value=8))
    n = draw(st.integers(min_value=0, max_value=12))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    planned = draw(st.lists(plan_rows, min_size=n, max_size=n))
    reported = draw(st.lists(reports, min_size=n, max_size=n))
    return n_slots, labels, planned, reported


def plan_at(plan: Sequence[float], k: int) -> float:
    """What the plan gives a session in slot k: beyond its row, nothing."""
    return plan[k] if k < len(plan) else 0.0


def report_at(report: Report, k: int) -> float | None:
    """What a session reports for slot k: None for no report, a hole, or past its end."""
    if report is None or k >= len(report):
        return None
    return report[k]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=400, deadline=None)
@given(sites())
def test_each_session_counts_once_by_its_report_where_it_has_one_else_by_its_plan(
    site: tuple[int, list[str], list[list[float]], list[Report]],
) -> None:
    n_slots, labels, planned, reported = site
    load = site_load_w(planned, reported, n_slots)
    assert len(load.total_w) == len(load.reported_w) == len(load.unreported_w) == n_slots
    for k in range(n_slots):
        said = [report_at(r, k) for r in reported]
        expected_reported = [v for v in said if v is not None]
        expected_unreported = sum(plan_at(p, k) for p, v in zip(planned, said, strict=True) if v is None)
        expected_total = sum(plan_at(p, k) if v is None else v for p, v in zip(planned, said, strict=True))
        assert close(load.total_w[k], expected_total), (k, load, expected_total)
        assert close(load.unreported_w[k], expected_unreported), (k, load)
        value = load.reported_w[k]
        if not expected_reported:
            assert value is None, (k, load)  # nobody reports the slot: no figure, not 0 W
        else:
            assert value is not None and close(value, sum(expected_reported)), (k, load)
        assert close(load.unreported_w[k] + (value or 0.0), load.total_w[k])
        assert all(math.isfinite(x) and x >= 0.0 for x in (load.total_w[k], load.unreported_w[k]))


@settings(max_examples=300, deadline=None)
@given(sites())
def test_fixed_sessions_that_report_are_not_counted_again_as_fixed_load(
    site: tuple[int, list[str], list[list[float]], list[Report]],
) -> None:
    # The tempting sum: every report, plus the plan's fixed load (the plan of every session we do not
    # steer), plus the steered sessions that do not report. It counts each fixed session that reports
    # twice: once by its report, once by its share of the fixed load.
    n_slots, labels, planned, reported = site
    load = site_load_w(planned, reported, n_slots)
    for k in range(n_slots):
        said = [report_at(r, k) for r in reported]
        fixed_load = sum(plan_at(p, k) for p, label in zip(planned, labels, strict=True) if label != "steered")
        naive = (sum(v for v in said if v is not None) + fixed_load
                 + sum(plan_at(p, k) for p, v, label in zip(planned, said, labels, strict=True)
                       if v is None and label == "steered"))
        counted_twice = sum(plan_at(p, k) for p, v, label in zip(planned, said, labels, strict=True)
                            if v is not None and label != "steered")
        assert close(load.total_w[k], naive - counted_twice), (k, labels, load)


def test_a_mixed_site_sums_each_session_once() -> None:
    # Four sessions on two slots: steered and reporting, fixed (EVSE not capable) and reporting,
    # released by the operator and silent, unreachable CPO with a report for slot 1 only.
    planned = [[7000.0, 7000.0], [11000.0, 11000.0], [3700.0, 3700.0], [22000.0, 22000.0]]
    reported: list[Report] = [[6500.0, 6900.0], [10000.0, 9000.0], None, [None, 4000.0]]
    load = site_load_w(planned, reported, 2)
    assert load.reported_w == [16500.0, 19900.0]
    assert load.unreported_w == [3700.0 + 22000.0, 3700.0]
    assert load.total_w == [6500.0 + 10000.0 + 3700.0 + 22000.0, 6900.0 + 9000.0 + 3700.0 + 4000.0]
    fixed_load = [11000.0 + 3700.0 + 22000.0] * 2
    naive = [r + f + 0.0 for r, f in zip([16500.0, 19900.0], fixed_load, strict=True)]
    assert all(t < n for t, n in zip(load.total_w, naive, strict=True))  # the double count is gone


def test_rows_longer_or_shorter_than_the_plan_and_an_empty_site() -> None:
    load = site_load_w([[1000.0, 2000.0, 3000.0, 4000.0], [500.0]], [[100.0, None, 300.0, 400.0], []], 3)
    assert load.reported_w == [100.0, None, 300.0]
    assert load.unreported_w == [500.0, 2000.0, 0.0]  # a report of [] says nothing: its plan counts
    assert load.total_w == [600.0, 2000.0, 300.0]
    empty = site_load_w([], [], 4)
    assert empty.reported_w == [None] * 4 and empty.unreported_w == empty.total_w == [0.0] * 4


def test_a_report_of_zero_is_a_report() -> None:
    # 0 W reported (the charge point holds the EV at nothing) replaces the plan; a hole does not.
    load = site_load_w([[5000.0, 5000.0]], [[0.0, None]], 2)
    assert load.reported_w == [0.0, None]
    assert load.total_w == [0.0, 5000.0]


# -- active_anchor ----------------------------------------------------------------------------------

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FACTS = ElectricalFacts(phases=3, voltage_v=230.0, max_amperage_a=32.0)
SETTINGS = ProfileSettings(failsafe_delay_s=3600)
PLAN = [11040.0, 11040.0, 5520.0, 5520.0]  # 16 A, 16 A, 8 A, 8 A on 3 x 230 V, 15-minute slots
FAILSAFE_W = 4140.0
SLOT_S = 900


def sent_profile() -> ChargingProfile:
    """What we send for PLAN: an absolute profile starting at START."""
    profile = build_profile(PLAN, start=START, slot_s=SLOT_S, facts=FACTS, failsafe_w=FAILSAFE_W, settings=SETTINGS)
    assert profile.start_date_time == START and profile.charging_rate_unit == ChargingRateUnit.A
    return profile


def judge(active: ActiveChargingProfile, anchor: datetime | None) -> ComplianceVerdict:
    return assess_compliance(active, PLAN, start=START, slot_s=SLOT_S, facts=FACTS, failsafe_w=FAILSAFE_W,
                             settings=SETTINGS, anchor=anchor).verdict


def copy(profile: ChargingProfile) -> ChargingProfile:
    """The profile as it comes back over the wire: a separate object, equal field by field."""
    return msgspec.json.decode(msgspec.json.encode(profile), type=ChargingProfile)


def test_a_conformant_peer_anchors_at_the_calculation_time() -> None:
    # mod_charging_profiles "ActiveChargingProfile.start_date_time": "All time measurements within the
    # profile are relative to this timestamp." Calculated 10 minutes in, relative to that moment.
    sent = sent_profile()
    calculated = START + timedelta(minutes=10)
    periods = [ChargingProfilePeriod(start_period=0, limit=16.0), ChargingProfilePeriod(start_period=1200, limit=8.0)]
    relative = ActiveChargingProfile(start_date_time=calculated, charging_profile=ChargingProfile(
        charging_rate_unit=ChargingRateUnit.A, charging_profile_period=periods))
    assert active_anchor(relative, [sent]) == calculated
    assert judge(relative, active_anchor(relative, [sent])) == ComplianceVerdict.COMPLIANT
    # It may also state an inner start of its own: recomputed periods are no copy of ours.
    stated = ActiveChargingProfile(start_date_time=calculated, charging_profile=ChargingProfile(
        start_date_time=calculated, charging_rate_unit=ChargingRateUnit.A, charging_profile_period=periods))
    assert active_anchor(stated, [sent]) == calculated
    assert judge(stated, active_anchor(stated, [sent])) == ComplianceVerdict.COMPLIANT


def test_a_hub_that_stamps_the_get_time_on_a_copy_of_our_profile_is_read_at_the_inner_start() -> None:
    # The hub answers our GET 40 minutes after we sent the profile: start_date_time is the time of
    # the GET, the inner profile is ours byte for byte, with our absolute start_date_time.
    sent = sent_profile()
    got_at = START + timedelta(minutes=40)
    echoed = ActiveChargingProfile(start_date_time=got_at, charging_profile=copy(sent))
    anchor = active_anchor(echoed, [sent])
    assert anchor == START
    result = assess_compliance(echoed, PLAN, start=START, slot_s=SLOT_S, facts=FACTS, failsafe_w=FAILSAFE_W,
                               settings=SETTINGS, anchor=anchor)
    assert result.verdict == ComplianceVerdict.COMPLIANT
    assert result.worst_excess_w == 0.0 and result.excess_w == [0.0] * len(result.excess_w)
    # Read to the letter the 16 A would last 40 minutes into the 8 A slots: an overshoot of our own plan.
    assert judge(echoed, None) == ComplianceVerdict.OVER_PLAN


def test_only_a_copy_of_a_profile_we_sent_moves_the_anchor() -> None:
    sent = sent_profile()
    got_at = START + timedelta(minutes=40)
    assert sent.start_date_time is not None

    def echo(**changes: object) -> ActiveChargingProfile:
        return ActiveChargingProfile(start_date_time=got_at,
                                     charging_profile=msgspec.structs.replace(copy(sent), **changes))

    # Same instant in another offset: still our profile (OCPI DateTimes compare as instants).
    assert active_anchor(echo(start_date_time=START.astimezone(timezone(timedelta(hours=2)))), [sent]) == START
    # Any other inner start, unit or period: not what we sent, so the letter of the spec holds.
    assert active_anchor(echo(start_date_time=START + timedelta(seconds=1)), [sent]) == got_at
    assert active_anchor(echo(start_date_time=None), [sent]) == got_at
    assert active_anchor(echo(charging_rate_unit=ChargingRateUnit.W), [sent]) == got_at
    periods = list(sent.charging_profile_period)
    changed = [*periods[:-1], ChargingProfilePeriod(start_period=periods[-1].start_period,
                                                    limit=periods[-1].limit + 0.1)]
    assert active_anchor(echo(charging_profile_period=changed), [sent]) == got_at
    # Nothing sent (or only a relative profile): nothing to recognise.
    assert active_anchor(echo(), []) == got_at
    assert active_anchor(echo(start_date_time=None), [msgspec.structs.replace(sent, start_date_time=None)]) == got_at
    # Any of the profiles we sent the session counts (accepted, sent since, the plan's newest).
    newer = build_profile([5520.0] * 4, start=START + timedelta(minutes=15), slot_s=SLOT_S, facts=FACTS,
                          failsafe_w=FAILSAFE_W, settings=SETTINGS)
    assert active_anchor(echo(), [newer, sent]) == START


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=4 * SLOT_S), st.lists(
    st.sampled_from([4140.0, 5520.0, 7360.0, 11040.0, 22080.0]), min_size=1, max_size=6))
def test_an_exact_copy_of_what_we_sent_is_never_over_plan_however_late_it_is_stamped(
    delay_s: int, plan: list[float]
) -> None:
    sent = build_profile(plan, start=START, slot_s=SLOT_S, facts=FACTS, failsafe_w=FAILSAFE_W, settings=SETTINGS)
    echoed = ActiveChargingProfile(start_date_time=START + timedelta(seconds=delay_s), charging_profile=copy(sent))
    anchor = active_anchor(echoed, [sent])
    assert anchor == START
    result = assess_compliance(echoed, plan, start=START, slot_s=SLOT_S, facts=FACTS, failsafe_w=FAILSAFE_W,
                               settings=SETTINGS, anchor=anchor)
    assert result.verdict == ComplianceVerdict.COMPLIANT, (delay_s, plan, result)
    assert result.worst_excess_w == 0.0
