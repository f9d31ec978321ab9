"""Invariants of the history's arithmetic and of the CLI's rounding (hypothesis)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scsp.api.history import _delivered, bucket_edges
from scsp.cli.solve import rounded
from scsp.records.sessions import SessionKey

T0 = 1_900_000_000


def key(n: int) -> SessionKey:
    return SessionKey(party=1, country_code="NL", party_id="CPA", session_id=f"S{n}")


reports = st.lists(st.tuples(st.integers(0, 7200), st.floats(0, 100, allow_nan=False)), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(reports, min_size=1, max_size=4), st.sampled_from([15, 60, 300, 900]))
def test_delivered_power_over_the_buckets_adds_up_to_the_energy_reported_in_the_window(
        sessions: list[list[tuple[int, float]]], bucket_s: int) -> None:
    energy = {key(i): [(datetime.fromtimestamp(T0 + t, UTC), kwh) for t, kwh in sorted(samples)]
              for i, samples in enumerate(sessions)}
    edges = bucket_edges(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 7200, UTC), bucket_s)
    now = float(T0 + 7200)
    watts = _delivered(energy, edges, now)
    newest = max(s[-1][0].timestamp() for s in energy.values())
    covered = np.clip(np.minimum(edges[1:], newest) - edges[:-1], 0, None)
    delivered_kwh = float(np.nansum(np.where(covered > 0, watts * covered / 3.6e6, 0.0)))
    # What each session's (never decreasing) energy grew by between the window's start and the newest report.
    expected = 0.0
    for samples in energy.values():
        at = np.array([s[0].timestamp() for s in samples])
        kwh = np.maximum.accumulate(np.array([s[1] for s in samples]))
        expected += float(np.interp(min(edges[-1], newest), at, kwh) - np.interp(edges[0], at, kwh))
    assert math.isclose(delivered_kwh, expected, rel_tol=1e-9, abs_tol=1e-9)
    assert np.all(np.isnan(watts) | (watts >= -1e-9))


numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["limit_kw", "energy_kwh", "power_w", "build_s", "id"]),
                       st.one_of(numbers, st.lists(numbers, max_size=5)), max_size=5))
def test_rounding_is_within_half_a_unit_idempotent_and_leaves_other_fields(doc: dict[str, object]) -> None:
    out = rounded(doc)
    assert rounded(out) == out
    for name, value in doc.items():
        places = {"limit_kw": 2, "energy_kwh": 3, "power_w": 0}.get(name)
        values = value if isinstance(value, list) else [value]
        got = out[name] if isinstance(out[name], list) else [out[name]]
        for before, after in zip(values, got, strict=True):
            if places is None:
                assert after == before
            else:
                assert abs(after - before) <= 0.5 * 10 ** -places + 1e-6 * abs(before)
