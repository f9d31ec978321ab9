"""Site signals over real HTTP: validation, replacement per source, idempotent replay, expiry, re-planning."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scsp.records.grid import SignalPoint
from tests.api.conftest import Api, iso


def at(ts: int) -> datetime:
    """Unix seconds as the aware datetime the store takes."""
    return datetime.fromtimestamp(ts, UTC)


SITE = "NL-CPA-LOC1"
HOUR = 3600


def base_ts() -> int:
    """The next whole hour: every point below starts in the future, within the horizon."""
    return (int(time.time()) // HOUR + 1) * HOUR


def points(start: int, values: list[float], step: int = HOUR) -> list[dict[str, Any]]:
    return [
        {"start": iso(start + i * step), "end": iso(start + (i + 1) * step), "value": v}
        for i, v in enumerate(values)
    ]


def signal_url(api: Api, kind: str = "import_limit", site: str = SITE) -> str:
    return f"{api.url}/api/v1/sites/{site}/signals/{kind}"


def stored(
    api: Api, kind: str = "import_limit", *, now_ts: int | None = None
) -> list[tuple[str, int, int, float]]:
    """What the planner reads over the next week: (source, start, end, value)."""
    now = int(time.time()) if now_ts is None else now_ts
    return [
        (p.source, int(p.start.timestamp()), int(p.end.timestamp()), p.value)
        for p in api.store.grid.signals(SITE, kind, start=at(now - 8 * 86400), end=at(now + 8 * 86400), now=at(now))
    ]


def rows(api: Api) -> list[tuple[Any, ...]]:
    with sqlite3.connect(api.running.config.db_path) as db:
        return db.execute("SELECT * FROM signals ORDER BY id").fetchall()


def test_a_submission_is_stored_and_answered_in_utc(api: Api, client: httpx.Client) -> None:
    b = base_ts()
    body = {
        "source": "dso-east",
        "points": [
            # No offset: UTC. With an offset: converted.
            {"start": iso(b).rstrip("Z"), "end": iso(b + HOUR).rstrip("Z"), "value": 11000},
            {
                "start": iso(b + HOUR),
                "end": time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(b + 4 * HOUR)),
                "value": 7000.5,
            },
        ],
    }
    reply = client.put(signal_url(api), json=body, headers=api.auth("dso"))
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["points"] == [
        {"start": iso(b), "end": iso(b + HOUR), "value": 11000.0},
        {"start": iso(b + HOUR), "end": iso(b + 2 * HOUR), "value": 7000.5},
    ]
    assert answer["expires_at"] == iso(b + 3 * HOUR)  # last end + 1 h
    assert (answer["site_id"], answer["kind"], answer["source"]) == (SITE, "import_limit", "dso-east")
    assert stored(api) == [("dso-east", b, b + HOUR, 11000.0), ("dso-east", b + HOUR, b + 2 * HOUR, 7000.5)]
    read = client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers=api.auth("aggregator")).json()
    assert [(s["start"], s["end"], s["value"], s["source"]) for s in read["signals"]] == [
        (iso(b), iso(b + HOUR), 11000.0, "dso-east"),
        (iso(b + HOUR), iso(b + 2 * HOUR), 7000.5, "dso-east"),
    ]


def test_a_newer_submission_replaces_the_same_source_over_its_range_and_trims_partial_overlaps(
    api: Api, client: httpx.Client
) -> None:
    b, headers = base_ts(), api.auth("dso")
    client.put(signal_url(api), json={"source": "A", "points": points(b, [10, 11, 12, 13])}, headers=headers)
    newer = {"source": "A", "points": [{"start": iso(b + 90 * 60), "end": iso(b + 150 * 60), "value": 5}]}
    client.put(signal_url(api), json=newer, headers=headers).raise_for_status()
    assert stored(api) == [
        ("A", b, b + HOUR, 10.0),
        ("A", b + HOUR, b + 90 * 60, 11.0),
        ("A", b + 90 * 60, b + 150 * 60, 5.0),
        ("A", b + 150 * 60, b + 3 * HOUR, 12.0),
        ("A", b + 3 * HOUR, b + 4 * HOUR, 13.0),
    ]


def test_a_submission_also_clears_the_gaps_inside_the_range_it_covers(api: Api, client: httpx.Client) -> None:
    b, headers = base_ts(), api.auth("dso")
    client.put(
        signal_url(api), json={"source": "A", "points": points(b, [10, 11, 12, 13, 14])}, headers=headers
    )
    sparse = {"source": "A", "points": [points(b + HOUR, [1])[0], points(b + 3 * HOUR, [3])[0]]}
    client.put(signal_url(api), json=sparse, headers=headers).raise_for_status()
    assert stored(api) == [
        ("A", b, b + HOUR, 10.0),
        ("A", b + HOUR, b + 2 * HOUR, 1.0),
        ("A", b + 3 * HOUR, b + 4 * HOUR, 3.0),
        ("A", b + 4 * HOUR, b + 5 * HOUR, 14.0),
    ]


def test_sources_coexist_and_a_submission_never_touches_another_source(
    api: Api, client: httpx.Client
) -> None:
    b, headers = base_ts(), api.auth("dso")
    client.put(signal_url(api), json={"source": "A", "points": points(b, [10, 11])}, headers=headers)
    client.put(signal_url(api), json={"source": "B", "points": points(b, [7, 8])}, headers=headers)
    client.put(signal_url(api), json={"source": "B", "points": points(b + HOUR, [6])}, headers=headers)
    assert stored(api) == [
        ("A", b, b + HOUR, 10.0),
        ("B", b, b + HOUR, 7.0),
        ("A", b + HOUR, b + 2 * HOUR, 11.0),
        ("B", b + HOUR, b + 2 * HOUR, 6.0),
    ]
    # Kinds are separate series: a price from source A leaves A's limits alone.
    client.put(signal_url(api, "price"), json={"source": "A", "points": points(b, [0.3])}, headers=headers)
    assert len(stored(api)) == 4 and stored(api, "price") == [("A", b, b + HOUR, 0.3)]


def test_replaying_a_submission_is_idempotent(api: Api, client: httpx.Client) -> None:
    b, headers = base_ts(), api.auth("aggregator")
    body = {"source": "market", "points": points(b, [0.21, -0.05, 0.3])}
    first = client.put(signal_url(api, "price"), json=body, headers=headers)
    table = rows(api)
    client.put(signal_url(api, "price"), json={"source": "other", "points": points(b, [1])}, headers=headers)
    table_with_other = rows(api)
    assert len(table_with_other) == len(table) + 1
    again = client.put(signal_url(api, "price"), json=body, headers=headers)
    posted = client.post(signal_url(api, "price"), json=body, headers=headers)
    assert first.status_code == again.status_code == posted.status_code == 200
    assert first.json() == again.json() == posted.json()
    assert rows(api) == table_with_other
    assert api.events.calls == [SITE, SITE]  # the two submissions that changed something


def test_put_and_post_store_the_same_way(api: Api, client: httpx.Client) -> None:
    b, headers = base_ts(), api.auth("dso")
    client.post(
        signal_url(api, "carbon"), json={"source": "grid", "points": points(b, [300, 250])}, headers=headers
    )
    client.put(
        signal_url(api, "carbon"), json={"source": "grid", "points": points(b + HOUR, [100])}, headers=headers
    )
    assert stored(api, "carbon") == [("grid", b, b + HOUR, 300.0), ("grid", b + HOUR, b + 2 * HOUR, 100.0)]


def test_the_planner_read_honours_expiry_and_the_window(api: Api, client: httpx.Client) -> None:
    b, headers = base_ts(), api.auth("dso")
    expiring = {"source": "A", "expires_at": iso(b + HOUR), "points": points(b, [10, 11, 12])}
    client.put(signal_url(api), json=expiring, headers=headers).raise_for_status()
    client.put(
        signal_url(api), json={"source": "B", "points": points(b, [20])}, headers=headers
    ).raise_for_status()
    now = b - 60
    assert [s for s, *_ in stored(api, now_ts=now)] == ["A", "B", "A", "A"]
    # After A's expiry only B remains, although A's points had not ended; B expires an hour after its end.
    assert stored(api, now_ts=b + HOUR) == [("B", b, b + HOUR, 20.0)]
    assert stored(api, now_ts=b + 2 * HOUR) == []
    # The window selects points overlapping [start, end).
    window = api.store.grid.signals(SITE, "import_limit", start=at(b + HOUR), end=at(b + 2 * HOUR), now=at(now))
    assert [(p.source, int(p.start.timestamp()), p.value) for p in window] == [("A", b + HOUR, 11.0)]
    assert api.store.grid.signals(SITE, "price", start=at(b), end=at(b + HOUR), now=at(now)) == []
    assert api.store.grid.signals("NL-CPA-LOC2", "import_limit", start=at(b), end=at(b + HOUR), now=at(now)) == []


def test_reading_signals_hides_expired_points_and_filters_by_kind(api: Api, client: httpx.Client) -> None:
    b, headers = base_ts(), api.auth("dso")
    old = int(time.time()) - 2 * HOUR
    api.store.grid.replace_signals(
        SITE,
        [
            SignalPoint(
                kind="import_limit",
                source="old",
                start=at(old),
                end=at(old + 60),
                value=1.0,
                expires_at=at(old + 120),
                submitted_at=at(old),
            )
        ],
        now=at(old),
    )
    client.put(signal_url(api), json={"source": "A", "points": points(b, [10])}, headers=headers)
    client.put(signal_url(api, "carbon"), json={"source": "A", "points": points(b, [99])}, headers=headers)
    everything = client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers=headers).json()["signals"]
    assert [(s["kind"], s["source"]) for s in everything] == [("carbon", "A"), ("import_limit", "A")]
    carbon = client.get(f"{api.url}/api/v1/sites/{SITE}/signals", params={"kind": "carbon"}, headers=headers)
    assert [s["value"] for s in carbon.json()["signals"]] == [99.0]
    bad = client.get(f"{api.url}/api/v1/sites/{SITE}/signals", params={"kind": "wind"}, headers=headers)
    assert bad.status_code == 422 and "kind" in bad.json()["detail"]


def test_a_negative_price_is_accepted_but_a_negative_limit_or_carbon_is_not(
    api: Api, client: httpx.Client
) -> None:
    b, headers = base_ts(), api.auth("aggregator")
    body = {"source": "A", "points": points(b, [-0.12])}
    assert client.put(signal_url(api, "price"), json=body, headers=headers).status_code == 200
    for kind in ("import_limit", "carbon"):
        reply = client.put(signal_url(api, kind), json=body, headers=headers)
        assert reply.status_code == 422 and "points[0].value" in reply.json()["detail"]
        assert stored(api, kind) == []


def future(values: list[float]) -> list[dict[str, Any]]:
    return points(base_ts(), values)


def now_iso(offset_s: int) -> str:
    return iso(time.time() + offset_s)


def overlapping(b: int) -> list[dict[str, Any]]:
    return [*points(b, [1]), {"start": iso(b + 1800), "end": iso(b + 7200), "value": 2}]


INVALID: list[tuple[str, Any, str]] = [
    (
        "end before start",
        lambda: [{"start": now_iso(7200), "end": now_iso(3600), "value": 1}],
        "points[0].end",
    ),
    ("empty point", lambda: [{"start": now_iso(3600), "end": now_iso(3600), "value": 1}], "points[0].end"),
    ("overlapping", lambda: overlapping(base_ts()), "points[1].start"),
    ("unordered", lambda: list(reversed(future([1, 2]))), "points[1].start"),
    (
        "beyond the horizon",
        lambda: [{"start": now_iso(3600), "end": now_iso(8 * 86400), "value": 1}],
        "points[0].end",
    ),
    (
        "entirely in the past",
        lambda: [{"start": now_iso(-7200), "end": now_iso(-3600), "value": 1}],
        "points[0].end",
    ),
    (
        "too long ago",
        lambda: [{"start": now_iso(-8 * 86400), "end": now_iso(3600), "value": 1}],
        "points[0].start",
    ),
    ("too large", lambda: future([2e9]), "points[0].value"),
    ("a string value", lambda: [{"start": now_iso(3600), "end": now_iso(7200), "value": "high"}], "value"),
    ("a missing value", lambda: [{"start": now_iso(3600), "end": now_iso(7200)}], "value"),
    ("not a date", lambda: [{"start": "tomorrow", "end": now_iso(7200), "value": 1}], "points[0].start"),
    ("no points", lambda: [], "points"),
    ("too many points", lambda: points(base_ts(), [1.0] * 2017, step=60), "points"),
]


@pytest.mark.parametrize(("name", "make_points", "field"), INVALID, ids=[n for n, _, _ in INVALID])
def test_each_invalid_submission_names_its_field_and_stores_nothing(
    api: Api, client: httpx.Client, name: str, make_points: Any, field: str
) -> None:
    reply = client.put(
        signal_url(api), json={"source": "A", "points": make_points()}, headers=api.auth("dso")
    )
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert field in reply.json()["detail"], reply.json()
    assert rows(api) == [] and api.events.calls == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"source": ""}, "source"),
        ({"source": "x" * 65}, "source"),
        ({"source": "tab\there"}, "source"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_invalid_source_expiry_or_unknown_field_is_named_and_stores_nothing(
    api: Api, client: httpx.Client, extra: dict[str, Any], field: str
) -> None:
    body = {"source": "A", "points": future([1]), **extra}
    reply = client.put(signal_url(api), json=body, headers=api.auth("dso"))
    assert reply.status_code == 422 and field in reply.json()["detail"], reply.text
    assert rows(api) == []


def test_an_unknown_kind_is_a_422_naming_the_kind(api: Api, client: httpx.Client) -> None:
    reply = client.put(
        signal_url(api, "wind"), json={"source": "A", "points": future([1])}, headers=api.auth("dso")
    )
    assert reply.status_code == 422 and "kind" in reply.json()["detail"]
    assert rows(api) == []


def test_every_error_of_a_submission_is_named_at_once(api: Api, client: httpx.Client) -> None:
    body = {
        "source": "A",
        "points": [
            {"start": now_iso(7200), "end": now_iso(3600), "value": 1},
            {"start": now_iso(7200), "end": now_iso(9000), "value": -1},
        ],
    }
    detail = client.put(signal_url(api), json=body, headers=api.auth("dso")).json()["detail"]
    assert "points[0].end: must be after start" in detail and "points[1].value" in detail


def test_a_signal_asks_for_a_replan_of_its_site_only(api: Api, client: httpx.Client) -> None:
    headers = api.auth("dso")
    client.put(
        signal_url(api), json={"source": "A", "points": future([1])}, headers=headers
    ).raise_for_status()
    client.put(
        signal_url(api, site="NL-CPA-LOC2"), json={"source": "A", "points": future([1])}, headers=headers
    )
    assert api.events.calls == [SITE, "NL-CPA-LOC2"]
