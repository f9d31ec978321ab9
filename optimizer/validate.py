"""Semantic checks of a `SiteProblem` beyond its types: lengths, ranges, references, finiteness.

Decoding (`optimizer.io`) already checks field names and types; these checks also run for problems
built in Python, because `solve` calls `validate_problem` first. Each failure raises `ProblemError`
naming the JSON path of the first offending field, e.g. `sessions[3].departure_slot`.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable
from itertools import chain

import numpy as np

from optimizer.model import PerSlot, Phase, ProblemError, ProfileType, SessionRequest, SiteProblem

__all__ = ["MAX_SLOTS", "validate_problem"]

# Largest horizon accepted (slots): a week of 1-minute slots. Beyond it the problem is almost
# certainly a unit mistake, and its matrices would not fit a planning cycle anyway.
MAX_SLOTS = 10_080

_PHASES = frozenset(p.value for p in Phase)
_NUMBER_TYPES: frozenset[type] = frozenset((int, float))
_PROFILE_TYPES = frozenset(p.value for p in ProfileType)


def _finite(path: str, value: float, *, minimum: float | None = None, positive: bool = False) -> None:
    """Raise unless `value` is a finite number, at least `minimum` (or > 0 when `positive`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(path, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ProblemError(path, f"must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ProblemError(path, f"must be > 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise ProblemError(path, f"must be >= {minimum:g}, got {value!r}")


def _per_slot(path: str, value: PerSlot, n_slots: int, *, minimum: float | None) -> None:
    """Raise unless `value` is one number or exactly `n_slots` numbers, each valid."""
    if isinstance(value, tuple | list):
        if len(value) != n_slots:
            raise ProblemError(path, f"expected one number or a list of n_slots={n_slots}, got {len(value)}")
        try:  # the common, valid case in one vector operation; the loop below names the culprit
            values = np.asarray(value, dtype=np.float64)
            valid = bool(np.isfinite(values).all()) and (minimum is None or bool((values >= minimum).all()))
        except (TypeError, ValueError):
            valid = False
        if not valid:
            for t, v in enumerate(value):
                _finite(f"{path}[{t}]", v, minimum=minimum)
    else:
        _finite(path, value, minimum=minimum)


def _unique(kind: str, ids: Iterable[str]) -> None:
    """Raise on the first repeated id in `ids`."""
    seen: set[str] = set()
    for i, ident in enumerate(ids):
        if ident in seen:
            raise ProblemError(f"{kind}[{i}].id", f"duplicate id {ident!r}")
        seen.add(ident)


def _known_evse(path: str, ident: str, known: Container[str]) -> None:
    """Raise unless `ident` is one of the `known` EVSE ids."""
    if ident not in known:
        raise ProblemError(path, f"unknown evse {ident!r}")


def _plain_numbers(values: Iterable[object]) -> bool:
    """Every value an int or a float (not a bool, which numpy would take as 0 or 1)."""
    return set(map(type, values)) <= _NUMBER_TYPES


def _sessions_fast(problem: SiteProblem) -> tuple[bool, bool]:
    """(every session's energy, max and min valid; every previous_kw of the right length valid),
    each decided in one vector operation. Only when one is False does the per-session loop check
    those fields one by one, to name the first offender: on a 5,000-session site the loop took
    most of the validation time."""
    sessions = problem.sessions
    numbers: list[object] = [v for s in sessions for v in (s.energy_kwh, s.max_kw, s.min_kw)]
    try:
        values = np.asarray(numbers, dtype=np.float64)
        numbers_ok = _plain_numbers(numbers) and bool(np.isfinite(values).all()) and bool((values >= 0).all())
    except (TypeError, ValueError):
        numbers_ok = False
    rows = [s.previous_kw for s in sessions if s.previous_kw is not None and len(s.previous_kw) == problem.n_slots]
    try:
        # As `_per_slot` converts them (numpy takes a bool as 0 or 1 there too), all in one go.
        previous = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=len(rows) * problem.n_slots)
        previous_ok = bool(np.isfinite(previous).all()) and bool((previous >= 0).all())
    except (TypeError, ValueError):
        previous_ok = False
    return numbers_ok, previous_ok


def _check_session(
    i: int, s: SessionRequest, evse_ids: Container[str], n_slots: int, *, numbers_ok: bool, previous_ok: bool
) -> None:
    """Raise `ProblemError` naming the first invalid field of session `i`."""
    path = f"sessions[{i}]"
    _known_evse(f"{path}.evse", s.evse, evse_ids)
    for name in ("arrival_slot", "departure_slot"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProblemError(f"{path}.{name}", f"expected an integer, got {type(value).__name__}")
    if s.arrival_slot < 0:
        raise ProblemError(f"{path}.arrival_slot", f"must be >= 0, got {s.arrival_slot}")
    if s.departure_slot <= s.arrival_slot:
        raise ProblemError(
            f"{path}.departure_slot",
            f"must be after arrival_slot={s.arrival_slot}, got {s.departure_slot}",
        )
    if not numbers_ok:
        _finite(f"{path}.energy_kwh", s.energy_kwh, minimum=0.0)
        _finite(f"{path}.max_kw", s.max_kw, minimum=0.0)
        _finite(f"{path}.min_kw", s.min_kw, minimum=0.0)
    if s.previous_kw is not None:
        if len(s.previous_kw) != n_slots:
            raise ProblemError(f"{path}.previous_kw", f"expected {n_slots} values, got {len(s.previous_kw)}")
        if not previous_ok:
            _per_slot(f"{path}.previous_kw", s.previous_kw, n_slots, minimum=0.0)
    if s.profile_type not in _PROFILE_TYPES:
        raise ProblemError(
            f"{path}.profile_type", f"must be one of {sorted(_PROFILE_TYPES)}, got {s.profile_type!r}"
        )


def validate_problem(problem: SiteProblem) -> None:
    """Raise `ProblemError` naming the first invalid field of `problem`; return None when valid.

    Args:
        problem: The problem to check.

    Raises:
        ProblemError: A value out of range, non-finite, of the wrong length, a duplicate id, an
            unknown EVSE reference, a departure not after the arrival, or a start without offset.
    """
    if problem.start.tzinfo is None or problem.start.utcoffset() is None:
        raise ProblemError("start", "must carry a UTC offset (e.g. '2026-11-23T00:00:00Z')")
    _finite("slot_minutes", problem.slot_minutes, positive=True)
    n_slots = problem.n_slots
    if isinstance(n_slots, bool) or not isinstance(n_slots, int) or not 1 <= n_slots <= MAX_SLOTS:
        raise ProblemError("n_slots", f"must be an integer in [1, {MAX_SLOTS}], got {n_slots!r}")

    site = problem.site
    _per_slot("site.limit_kw", site.limit_kw, n_slots, minimum=0.0)
    if site.phase_limit_a is not None:
        _per_slot("site.phase_limit_a", site.phase_limit_a, n_slots, minimum=0.0)
    _finite("site.voltage_v", site.voltage_v, positive=True)
    if site.fixed_load_kw is not None:
        _per_slot("site.fixed_load_kw", site.fixed_load_kw, n_slots, minimum=0.0)
    if site.failsafe_kw is not None:
        _finite("site.failsafe_kw", site.failsafe_kw, minimum=0.0)

    _unique("evses", (e.id for e in problem.evses))
    evse_ids = {e.id: i for i, e in enumerate(problem.evses)}
    for i, evse in enumerate(problem.evses):
        _finite(f"evses[{i}].max_kw", evse.max_kw, minimum=0.0)
        if isinstance(evse.phases, bool) or evse.phases not in (1, 2, 3):
            raise ProblemError(f"evses[{i}].phases", f"must be 1, 2 or 3, got {evse.phases!r}")
        if evse.phase not in _PHASES:
            raise ProblemError(f"evses[{i}].phase", f"must be one of {sorted(_PHASES)}, got {evse.phase!r}")

    _unique("circuits", (c.id for c in problem.circuits))
    for c, circuit in enumerate(problem.circuits):
        for k, ident in enumerate(circuit.evses):
            _known_evse(f"circuits[{c}].evses[{k}]", ident, evse_ids)
        _per_slot(f"circuits[{c}].limit_kw", circuit.limit_kw, n_slots, minimum=0.0)

    _unique("sessions", (s.id for s in problem.sessions))
    numbers_ok, previous_ok = _sessions_fast(problem)
    for i, s in enumerate(problem.sessions):
        a, d, previous = s.arrival_slot, s.departure_slot, s.previous_kw
        plain = (
            numbers_ok
            and previous_ok
            and s.evse in evse_ids
            and type(a) is int
            and type(d) is int
            and 0 <= a < d
            and (previous is None or len(previous) == n_slots)
            and s.profile_type in _PROFILE_TYPES
        )
        if not plain:  # the checks one by one, naming the field (most sessions skip them)
            _check_session(i, s, evse_ids, n_slots, numbers_ok=numbers_ok, previous_ok=previous_ok)

    if problem.price_per_kwh is not None:
        _per_slot("price_per_kwh", problem.price_per_kwh, n_slots, minimum=None)
    if problem.co2_g_per_kwh is not None:
        _per_slot("co2_g_per_kwh", problem.co2_g_per_kwh, n_slots, minimum=0.0)
