"""The ChargingProfiles Receiver: sync answers, results POSTed to response_url, charging follows the limit."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.cposim.conftest import (
    World,
    active_profile_pushes,
    posted_results,
    results_url,
    set_profile,
    wait_for,
)
from tests.cposim.test_cpo_api import routed_to_us


def ev_where(world: World, session_id: str, check: Any) -> dict[str, Any]:
    """Wait until the EV of the session satisfies `check`."""

    def probe() -> dict[str, Any] | None:
        ev = world.ev(session_id)
        return ev if ev is not None and check(ev) else None

    return wait_for(probe, f"the EV of {session_id} to reach the expected state")


def test_a_set_profile_is_accepted_applied_confirmed_and_pushed_as_active_profile(world: World) -> None:
    sid = world.plug("A-AC3")
    reply = world.ocpi(
        "PUT",
        f"chargingprofiles/{sid}",
        json={
            "charging_profile": {
                "charging_rate_unit": "A",
                "charging_profile_period": [{"start_period": 0, "limit": 10.0}],
            },
            "response_url": results_url(world, "s1"),
        },
    )
    assert reply.json()["data"] == {"result": "ACCEPTED", "timeout": 30}
    assert (reply.headers["ocpi-from-party-id"], reply.headers["ocpi-to-party-id"]) == ("SIM", "SCP")
    (result,) = wait_for(lambda: posted_results(world, "s1"), "the result POST")
    assert result.body == {"result": "ACCEPTED"}  # the bare object, no envelope
    assert result.query == "request_id=s1&kind=x" and routed_to_us(result.headers)
    ev = ev_where(world, sid, lambda e: e["profile_source"] == "set")
    assert ev["power_w"] == 10 * 230 * 3 and ev["limit_w"] == 6900
    (push,) = wait_for(lambda: active_profile_pushes(world, sid), "the ActiveChargingProfile PUT")
    assert routed_to_us(push.headers)
    active = push.body
    assert active["start_date_time"].endswith("Z") and active["charging_profile"]["charging_rate_unit"] == "A"
    assert active["charging_profile"]["charging_profile_period"] == [{"start_period": 0, "limit": 10.0}]
    assert active["charging_profile"]["duration"] == 900
    (command,) = world.sim("GET", "commands")
    assert (command["method"], command["session_id"], command["result"], command["party"]) == (
        "PUT",
        sid,
        "ACCEPTED",
        "NL-SCP",
    )
    assert command["response"] == {"result": "ACCEPTED", "timeout": 30} and command["result_sent_at"]


def test_a_dc_session_follows_a_limit_in_watts_and_a_later_period(world: World) -> None:
    sid = world.plug("A-DC")
    ev_where(world, sid, lambda e: e["power_w"] == 50_000)
    assert set_profile(world, sid, (0, 20_000.0), (3600, 5_000.0), unit="W")["result"] == "ACCEPTED"
    ev = ev_where(world, sid, lambda e: e["power_w"] == 20_000)
    assert ev["limit_w"] == 20_000
    # An absolute profile whose second period has already begun applies that period.
    from datetime import UTC, datetime, timedelta

    start = (datetime.now(UTC) - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    set_profile(world, sid, (0, 30_000.0), (60, 12_500.5), unit="W", name="abs", start_date_time=start)
    ev_where(world, sid, lambda e: e["power_w"] == 12_500.5)


def test_the_battery_fills_and_the_ev_stops_drawing_but_stays_plugged(world: World) -> None:
    sid = world.plug("A-AC1", energy_kwh=0.004)
    ev = ev_where(world, sid, lambda e: e["full"])
    assert ev["kwh"] == pytest.approx(0.004) and ev["power_w"] == 0.0
    pulled = world.ocpi("GET", "sessions").json()["data"]
    assert pulled[0]["status"] == "ACTIVE" and pulled[0]["kwh"] == pytest.approx(0.004)


def test_a_limit_below_the_vehicle_minimum_current_stops_charging(world: World) -> None:
    sid = world.plug("A-AC3", min_a=6.0)
    set_profile(world, sid, (0, 5.0))
    ev = ev_where(world, sid, lambda e: e["profile_source"] == "set")
    assert ev["power_w"] == 0.0 and ev["limit_w"] == 5 * 230 * 3


def test_get_posts_the_active_profile_to_a_percent_encoded_response_url(world: World) -> None:
    sid = world.plug("A-AC3")
    url = results_url(world, "g1")
    reply = world.ocpi("GET", f"chargingprofiles/{sid}?duration=600&response_url={quote(url, safe='')}")
    assert reply.json()["data"]["result"] == "ACCEPTED"
    (result,) = wait_for(lambda: posted_results(world, "g1"), "the ActiveChargingProfileResult")
    assert result.query == "request_id=g1&kind=x"
    assert result.body["result"] == "ACCEPTED"
    profile = result.body["profile"]["charging_profile"]
    # No profile set: the EVSE maximum (16 A), for the duration asked.
    assert profile["duration"] == 600 and profile["charging_profile_period"] == [
        {"start_period": 0, "limit": 16.0}
    ]
    # The GET never counts as a successful PUT: no ActiveChargingProfile push follows.
    assert active_profile_pushes(world, sid) == []


def test_delete_with_an_unencoded_response_url_clears_the_profile_and_pushes_the_evse_maximum(
    world: World,
) -> None:
    sid = world.plug("A-AC3")
    set_profile(world, sid, (0, 8.0))
    ev_where(world, sid, lambda e: e["power_w"] == 8 * 230 * 3)
    wait_for(lambda: active_profile_pushes(world, sid), "the first ActiveChargingProfile PUT")
    # The spec's examples put the URL in raw; an '&' inside it must not cut it.
    reply = world.ocpi("DELETE", f"chargingprofiles/{sid}?response_url={results_url(world, 'c1')}")
    assert reply.json()["data"]["result"] == "ACCEPTED"
    (result,) = wait_for(lambda: posted_results(world, "c1"), "the ClearProfileResult")
    assert result.body == {"result": "ACCEPTED"} and result.query == "request_id=c1&kind=x"
    ev = ev_where(world, sid, lambda e: e["profile_source"] == "none")
    assert ev["power_w"] == 11_040
    pushes = wait_for(
        lambda: active_profile_pushes(world, sid)[1:], "the ActiveChargingProfile after the clear"
    )
    assert pushes[0].body["charging_profile"]["charging_profile_period"] == [
        {"start_period": 0, "limit": 16.0}
    ]
    # Clearing again finds nothing to clear.
    world.ocpi("DELETE", f"chargingprofiles/{sid}", params={"response_url": results_url(world, "c2")})
    (again,) = wait_for(lambda: posted_results(world, "c2"), "the second ClearProfileResult")
    assert again.body == {"result": "UNKNOWN"}


def test_no_active_profile_is_pushed_for_a_session_never_successfully_set(world: World) -> None:
    first, second = world.plug("A-AC3"), world.plug("A-AC1")
    world.ocpi("DELETE", f"chargingprofiles/{first}", params={"response_url": results_url(world, "d1")})
    wait_for(lambda: posted_results(world, "d1"), "the ClearProfileResult")
    set_profile(world, second, (0, 10.0), name="s2")
    wait_for(lambda: active_profile_pushes(world, second), "the ActiveChargingProfile of the set session")
    assert active_profile_pushes(world, first) == []


def test_unknown_and_finished_sessions_are_unknown_session_and_an_incapable_evse_not_supported(
    world: World,
) -> None:
    assert set_profile(world, "no-such-session", (0, 10.0))["result"] == "UNKNOWN_SESSION"
    sid = world.plug("A-AC3")
    world.sim("DELETE", f"evs/{sid}")
    assert set_profile(world, sid, (0, 10.0), name="late")["result"] == "UNKNOWN_SESSION"
    reply = world.ocpi(
        "GET", f"chargingprofiles/{sid}", params={"duration": 60, "response_url": results_url(world, "g")}
    )
    assert reply.json()["data"]["result"] == "UNKNOWN_SESSION"
    assert [c["response"]["result"] for c in world.sim("GET", "commands")] == ["UNKNOWN_SESSION"] * 3
    old = world.plug("A-OLD")
    assert set_profile(world, old, (0, 10.0), name="old")["result"] == "NOT_SUPPORTED"


BAD_REQUESTS: list[tuple[str, str, Any]] = [
    (
        "PUT",
        "chargingprofiles/{sid}",
        {"charging_profile": {"charging_profile_period": []}, "response_url": "http://x/y"},
    ),
    (
        "PUT",
        "chargingprofiles/{sid}",
        {
            "charging_profile": {
                "charging_rate_unit": "A",
                "charging_profile_period": [{"start_period": 0, "limit": -1}],
            },
            "response_url": "http://x/y",
        },
    ),
    (
        "PUT",
        "chargingprofiles/{sid}",
        {"charging_profile": {"charging_rate_unit": "kW"}, "response_url": "http://x"},
    ),
    (
        "PUT",
        "chargingprofiles/{sid}",
        {"charging_profile": {"charging_rate_unit": "A"}, "response_url": "ftp://x"},
    ),
    ("PUT", "chargingprofiles/{sid}", {"charging_profile": {"charging_rate_unit": "A"}}),
    ("GET", "chargingprofiles/{sid}?response_url=http://x/y", None),
    ("GET", "chargingprofiles/{sid}?duration=abc&response_url=http://x/y", None),
    ("DELETE", "chargingprofiles/{sid}", None),
    (
        "PUT",
        "chargingprofiles/{sid}",
        {"charging_profile": {"charging_rate_unit": "A", "duration": 10**12}, "response_url": "http://x/y"},
    ),
    (
        "PUT",
        "chargingprofiles/" + "x" * 37,
        {"charging_profile": {"charging_rate_unit": "A"}, "response_url": "http://x/y"},
    ),
]


def test_bad_requests_get_an_ocpi_error_never_a_server_error(world: World) -> None:
    sid = world.plug("A-AC3")
    for method, path, body in BAD_REQUESTS:
        reply = world.ocpi(method, path.format(sid=sid), json=body)
        assert reply.status_code < 500 and reply.json()["status_code"] == 2001, (
            method,
            path,
            body,
            reply.text,
        )
    assert world.sim("GET", "commands") == []
    # A body that is not JSON at all is a 400 (transport_and_format).
    reply = world.ocpi(
        "PUT", f"chargingprofiles/{sid}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400 and reply.json()["status_code"] == 2000
