"""Which profiles of a site to send: the site's sum stays within its limit, small changes stay home."""

from __future__ import annotations

from datetime import UTC, datetime

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod
from profiles import ProfileSettings
from profiles.selection import Candidate, select

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 1, tzinfo=UTC)
W_PER_A = 230.0 * 3
SETTINGS = ProfileSettings()


def amps(*periods: tuple[int, float]) -> ChargingProfile:
    return ChargingProfile(charging_rate_unit="A", start_date_time=START,
                           charging_profile_period=[ChargingProfilePeriod(start_period=s, limit=a) for s, a in periods])


def choose(candidates: list[Candidate], cap_a: float) -> list[tuple[bool, bool, bool]]:
    choices = select(candidates, limit_w=[cap_a * W_PER_A] * 8, fixed_w=[0.0] * 8, start=START, slot_s=900,
                     now=NOW, settings=SETTINGS, lookahead_s=3600)
    return [(c.send, c.lowers, c.held_back) for c in choices]


def session(new: ChargingProfile, *held: ChargingProfile, blocked: bool = False) -> Candidate:
    return Candidate(new=new, held=held, w_per_a=W_PER_A, max_w=32 * W_PER_A, blocked=blocked)


def test_small_changes_that_keep_the_site_within_its_limit_are_not_sent() -> None:
    a = session(amps((0, 15.6), (3600, 4.0)), amps((0, 16.0), (3600, 4.0)))
    b = session(amps((0, 6.4), (3600, 4.0)), amps((0, 6.0), (3600, 4.0)))
    assert choose([a, b], cap_a=22.0) == [(False, True, False), (False, False, False)]


def test_a_small_decrease_is_sent_when_an_increase_relies_on_it() -> None:
    a = session(amps((0, 15.6), (3600, 4.0)), amps((0, 16.0), (3600, 4.0)))  # -0.4 A: too small alone
    b = session(amps((0, 6.4), (900, 9.0), (3600, 4.0)), amps((0, 6.0), (3600, 4.0)))  # +3 A from 12:15
    # B alone would take the site over 22 A from 12:15 (16 + 9 > 22.0 + noise) ... with A's decrease it fits.
    assert choose([a, b], cap_a=24.6) == [(True, True, False), (True, False, False)]


def test_an_increase_waits_while_the_decrease_it_needs_cannot_go() -> None:
    a = session(amps((0, 10.0)), amps((0, 16.0)), blocked=True)  # a request for A is still in flight
    b = session(amps((0, 12.0)), amps((0, 6.0)))
    assert choose([a, b], cap_a=22.0) == [(False, True, False), (False, False, True)]


def test_a_first_profile_is_always_sent_and_counts_as_a_decrease() -> None:
    assert choose([session(amps((0, 8.0)))], cap_a=22.0) == [(True, True, False)]


def test_a_lower_failsafe_tail_is_always_sent() -> None:
    a = session(amps((0, 16.0), (3600, 4.0)), amps((0, 16.0), (3600, 4.5)))  # tail 0.5 A lower
    assert choose([a], cap_a=22.0) == [(True, True, False)]


def test_changes_beyond_the_lookahead_wait_for_a_later_cycle() -> None:
    a = session(amps((0, 10.0), (1800, 4.0), (3600, 4.0)), amps((0, 10.0), (1800, 12.0), (3600, 4.0)))
    choices = select([a], limit_w=[22 * W_PER_A] * 8, fixed_w=[0.0] * 8, start=START, slot_s=900, now=NOW,
                     settings=SETTINGS, lookahead_s=600)
    assert [(c.send, c.lowers) for c in choices] == [(False, True)]  # safe: the site is within its limit


def test_a_profile_goes_with_the_decreases_only_when_its_first_change_is_a_decrease() -> None:
    # A: lower now, higher from 12:15 (its rise comes later, when every profile of the dispatch is in).
    a = session(amps((0, 6.0), (900, 16.0)), amps((0, 10.0)))
    # B: higher now, lower from 12:15: its rise would take effect at once, beside the site's decreases.
    b = session(amps((0, 14.0), (900, 0.0)), amps((0, 10.0)))
    assert choose([a, b], cap_a=20.0) == [(True, True, False), (True, False, False)]
