"""The reads the planner calls every cycle (`ApiStoreMixin` contract), on a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scsp.records.grid import SignalPoint, SiteSettings
from scsp.records.sessions import Preferences
from scsp.store import Store
from scsp.store.grid import PREFERENCES_SQL, SIGNALS_SQL, SITE_SETTINGS_SQL


def at(ts: int) -> datetime:
    """Unix seconds as the aware datetime the store takes."""
    return datetime.fromtimestamp(ts, UTC)


SITE = "NL-CPA-LOC1"
T0 = 1_900_000_000


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "scsp.db")
    store.migrate()
    return store


def point(
    source: str,
    start: int,
    end: int,
    value: float,
    *,
    kind: str = "import_limit",
    expires: int = T0 + 86400,
    submitted: int = T0,
) -> SignalPoint:
    return SignalPoint(
        kind=kind,
        source=source,
        start=at(start),
        end=at(end),
        value=value,
        expires_at=at(expires),
        submitted_at=at(submitted),
    )


def test_signals_returns_every_unexpired_point_overlapping_the_window_of_all_sources_by_start(
    store: Store,
) -> None:
    store.grid.replace_signals(
        SITE, [point("B", T0 + 600, T0 + 1200, 5), point("B", T0 + 1200, T0 + 1800, 6)], now=at(T0)
    )
    store.grid.replace_signals(SITE, [point("A", T0, T0 + 900, 7), point("A", T0 + 900, T0 + 3600, 8)], now=at(T0))
    store.grid.replace_signals(SITE, [point("C", T0, T0 + 3600, 1, expires=T0 + 60)], now=at(T0))
    store.grid.replace_signals(SITE, [point("A", T0, T0 + 3600, 0.3, kind="price")], now=at(T0))
    store.grid.replace_signals("NL-CPA-LOC2", [point("A", T0, T0 + 3600, 9)], now=at(T0))
    got = store.grid.signals(SITE, "import_limit", start=at(T0 + 1000), end=at(T0 + 1800), now=at(T0 + 100))
    assert [(p.source, int(p.start.timestamp()), p.value) for p in got] == [
        ("B", T0 + 600, 5),
        ("A", T0 + 900, 8),
        ("B", T0 + 1200, 6),
    ]
    # A point ending exactly at the window start, or starting at its end, does not overlap [start, end).
    assert store.grid.signals(SITE, "import_limit", start=at(T0 + 1800), end=at(T0 + 1900), now=at(T0 + 100)) == [
        point("A", T0 + 900, T0 + 3600, 8)
    ]
    # C expired at T0 + 60.
    assert {
        p.source for p in store.grid.signals(SITE, "import_limit", start=at(T0), end=at(T0 + 3600), now=at(T0 + 59))
    } == {"A", "B", "C"}
    assert {
        p.source for p in store.grid.signals(SITE, "import_limit", start=at(T0), end=at(T0 + 3600), now=at(T0 + 60))
    } == {"A", "B"}


def test_a_replay_keeps_the_original_submission_time_and_a_change_does_not(store: Store) -> None:
    first = [point("A", T0, T0 + 900, 7, submitted=T0)]
    assert store.grid.replace_signals(SITE, first, now=at(T0)) == (True, first)
    replay = [point("A", T0, T0 + 900, 7, submitted=T0 + 500)]
    assert store.grid.replace_signals(SITE, replay, now=at(T0 + 500)) == (False, first)
    changed = [point("A", T0, T0 + 900, 8, submitted=T0 + 600)]
    assert store.grid.replace_signals(SITE, changed, now=at(T0 + 600)) == (True, changed)
    assert store.grid.signals(SITE, "import_limit", start=at(T0), end=at(T0 + 900), now=at(T0 + 600)) == changed


def test_writing_a_signal_drops_expired_points_of_that_site_and_kind(store: Store, tmp_path: Path) -> None:
    store.grid.replace_signals(SITE, [point("A", T0, T0 + 60, 1, expires=T0 + 60)], now=at(T0))
    store.grid.replace_signals(SITE, [point("A", T0, T0 + 60, 1, kind="price", expires=T0 + 60)], now=at(T0))
    store.grid.replace_signals(SITE, [point("B", T0 + 600, T0 + 900, 2)], now=at(T0 + 300))
    with sqlite3.connect(tmp_path / "scsp.db") as db:
        assert db.execute("SELECT kind, source FROM signals ORDER BY kind").fetchall() == [
            ("import_limit", "B"),
            ("price", "A"),
        ]


def test_site_settings_and_preferences_round_trip(store: Store) -> None:
    assert store.grid.settings(SITE) is None
    settings = SiteSettings(
        site_id=SITE,
        import_limit_w=1e5,
        phase_limit_a=None,
        voltage_v=230.0,
        failsafe_w=2e4,
        phase_assignment={"E1": "L2"},
        updated_at=at(T0),
    )
    store.grid.put_settings(settings)
    assert store.grid.settings(SITE) == settings
    assert store.grid.preferences("NL", "CPA", "S1") is None
    prefs = Preferences(
        country_code="NL",
        party_id="CPA",
        session_id="S1",
        profile_type="CHEAP",
        departure=at(T0 + 3600),
        energy_kwh=12.0,
        discharge_allowed=True,
        source="apikey:1",
        updated_at=at(T0),
    )
    store.grid.put_preferences(prefs)
    assert store.grid.preferences("nl", "cpa", "S1") == prefs
    # Session ids are CiStrings (types.asciidoc): stored as received, compared without case.
    assert store.grid.preferences("NL", "CPA", "s1") == prefs


@pytest.mark.parametrize(
    ("sql", "args", "index"),
    [
        (SIGNALS_SQL, [SITE, "import_limit", T0, T0 + 86400, T0], "signals_site"),
        (SITE_SETTINGS_SQL, [SITE], "sqlite_autoindex_site_settings_1"),
        (PREFERENCES_SQL, ["NL", "CPA", "S1"], "sqlite_autoindex_preferences_1"),
    ],
    ids=["signals", "site_settings", "preferences"],
)
def test_the_planners_reads_are_index_lookups(
    store: Store, tmp_path: Path, sql: str, args: list[object], index: str
) -> None:
    with sqlite3.connect(tmp_path / "scsp.db") as db:
        plan = " | ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    assert f"USING INDEX {index}" in plan, plan
    assert "SCAN" not in plan.replace("USE TEMP B-TREE", ""), plan
