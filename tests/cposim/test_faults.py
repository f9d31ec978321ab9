"""Each injectable fault produces its documented behaviour (cposim/README.md "Faults")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.cposim.conftest import (
    World,
    active_profile_pushes,
    posted_results,
    results_url,
    set_profile,
    wait_for,
)
from tests.cposim.test_chargingprofiles import ev_where


def faults(world: World, *items: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = world.sim("PUT", "faults", json=list(items))
    return result


def command_of(world: World, response_name: str) -> dict[str, Any]:
    return next(
        c for c in world.sim("GET", "commands") if c["response_url"] == results_url(world, response_name)
    )


def test_synchronous_faults_answer_without_applying_or_calling_back(world: World) -> None:
    sid = world.plug("A-AC3")
    for kind in ("TOO_OFTEN", "REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION"):
        faults(world, {"kind": kind})
        assert set_profile(world, sid, (0, 6.0), name=f"put-{kind}") == {"result": kind, "timeout": 30}
        get = world.ocpi(
            "GET",
            f"chargingprofiles/{sid}",
            params={"duration": 60, "response_url": results_url(world, f"get-{kind}")},
        )
        assert get.json()["data"]["result"] == kind
        assert command_of(world, f"put-{kind}")["faults"] == [kind]
        assert command_of(world, f"put-{kind}")["result"] is None
    world.sim("DELETE", "faults")
    set_profile(world, sid, (0, 7.0), name="ok")
    wait_for(lambda: posted_results(world, "ok"), "the result of the request after the faults")
    # Nothing was posted for the refused requests, and only the last profile was ever applied.
    assert [r.path.rsplit("/", 1)[1] for r in world.recorder.all("POST", "chargingprofiles/results/")] == [
        "ok"
    ]
    ev = ev_where(world, sid, lambda e: e["profile"] is not None)
    assert ev["profile"]["charging_profile_period"][0]["limit"] == 7.0


def test_faults_apply_to_their_evse_or_location_only(world: World) -> None:
    a3, a1, b1 = world.plug("A-AC3"), world.plug("A-AC1"), world.plug("B-AC3-1", "LOC-B")
    faults(world, {"kind": "REJECTED", "evse_uid": "A-AC3"}, {"kind": "TOO_OFTEN", "location_id": "LOC-B"})
    assert set_profile(world, a3, (0, 8.0), name="a3")["result"] == "REJECTED"
    assert set_profile(world, a1, (0, 8.0), name="a1")["result"] == "ACCEPTED"
    assert set_profile(world, b1, (0, 8.0), name="b1")["result"] == "TOO_OFTEN"
    listed = world.sim("GET", "faults")
    assert {(f["kind"], f["evse_uid"], f["location_id"]) for f in listed} == {
        ("REJECTED", "A-AC3", None),
        ("TOO_OFTEN", None, "LOC-B"),
    }


def test_too_often_with_a_value_limits_the_request_rate_per_session(world: World) -> None:
    sid = world.plug("A-AC3")
    faults(world, {"kind": "TOO_OFTEN", "value": 3600})
    assert set_profile(world, sid, (0, 8.0), name="r1")["result"] == "ACCEPTED"
    assert set_profile(world, sid, (0, 9.0), name="r2")["result"] == "TOO_OFTEN"
    other = world.plug("A-AC1")
    assert set_profile(world, other, (0, 9.0), name="r3")["result"] == "ACCEPTED"


def test_no_callback_accepts_and_applies_but_never_posts_the_result(world: World) -> None:
    sid = world.plug("A-AC3")
    faults(world, {"kind": "NO_CALLBACK", "evse_uid": "A-AC3"})
    assert set_profile(world, sid, (0, 8.0), name="lost")["result"] == "ACCEPTED"
    ev_where(world, sid, lambda e: e["power_w"] == 8 * 230 * 3)
    other = world.plug("A-AC1")
    set_profile(world, other, (0, 8.0), name="found")
    wait_for(lambda: posted_results(world, "found"), "the other EVSE's result")
    wait_for(
        lambda: command_of(world, "lost")["result"] == "ACCEPTED", "the charge point's result to be recorded"
    )
    assert posted_results(world, "lost") == []
    assert command_of(world, "lost")["result_error"] == "not sent: NO_CALLBACK fault"


def test_slow_callback_posts_the_result_after_the_given_delay(world: World) -> None:
    sid = world.plug("A-AC3")
    faults(world, {"kind": "SLOW_CALLBACK", "value": 0.6})
    set_profile(world, sid, (0, 8.0), name="slow")
    command = command_of(world, "slow")
    due = datetime.fromisoformat(command["result_due_at"]) - datetime.fromisoformat(command["received_at"])
    assert due.total_seconds() == pytest.approx(0.6)  # the simulator's schedule, not a measured time
    (result,) = wait_for(lambda: posted_results(world, "slow"), "the slow result")
    assert result.body == {"result": "ACCEPTED"}


def test_result_rejected_posts_rejected_and_applies_nothing(world: World) -> None:
    sid = world.plug("A-AC3")
    faults(world, {"kind": "RESULT_REJECTED"})
    assert set_profile(world, sid, (0, 8.0), name="rr")["result"] == "ACCEPTED"
    (result,) = wait_for(lambda: posted_results(world, "rr"), "the REJECTED result")
    assert result.body == {"result": "REJECTED"}
    ev = world.ev(sid)
    assert ev is not None and ev["profile"] is None and ev["power_w"] == 11_040
    world.sim("DELETE", "faults")
    other = world.plug("A-AC1")
    set_profile(world, other, (0, 8.0), name="fine")
    wait_for(lambda: active_profile_pushes(world, other), "the ActiveChargingProfile of the accepted set")
    assert active_profile_pushes(world, sid) == []  # never successfully set: no push


def test_apply_lower_applies_a_fraction_and_reports_it_in_the_active_profile(world: World) -> None:
    sid = world.plug("A-AC3")
    faults(world, {"kind": "APPLY_LOWER", "value": 0.5, "location_id": "LOC-A"})
    set_profile(world, sid, (0, 15.0), name="low")
    (result,) = wait_for(lambda: posted_results(world, "low"), "the result")
    assert result.body == {"result": "ACCEPTED"}
    ev = ev_where(world, sid, lambda e: e["profile_source"] == "set x 0.5")
    assert (
        ev["power_w"] == 7.5 * 230 * 3
        and ev["requested_profile"]["charging_profile_period"][0]["limit"] == 15.0
    )
    (push,) = wait_for(lambda: active_profile_pushes(world, sid), "the ActiveChargingProfile")
    assert push.body["charging_profile"]["charging_profile_period"] == [{"start_period": 0, "limit": 7.5}]


def test_invalid_faults_are_refused_and_change_nothing(world: World) -> None:
    faults(world, {"kind": "REJECTED"})
    for bad in (
        [{"kind": "DOWNTIME", "evse_uid": "A-AC3"}],
        [{"kind": "APPLY_LOWER", "value": 2}],
        [{"kind": "NOPE"}],
        [{"kind": "REJECTED", "evse_uid": "A-AC3", "location_id": "LOC-A"}],
    ):
        reply = world.http.put(f"{world.sim_url}/sim/faults", json=bad)
        assert reply.status_code in (400, 422), reply.text
    assert [f["kind"] for f in world.sim("GET", "faults")] == ["REJECTED"]


def test_downtime_answers_503_pushes_nothing_keeps_charging_and_does_not_replay(world: World) -> None:
    sid = world.plug("A-AC3")
    base = f"/ocpi/2.2.1/sessions/NL/SIM/{sid}"
    wait_for(lambda: [r for r in world.recorder.all("PATCH", "sessions/") if r.path == base], "a first PATCH")
    faults(world, {"kind": "DOWNTIME"})
    down = world.ocpi("GET", "sessions")
    assert down.status_code == 503 and down.json()["status_code"] == 3000
    assert world.http.get(f"{world.sim_url}/ocpi/versions").status_code == 503
    assert world.ocpi("PUT", f"chargingprofiles/{sid}", json={}).status_code == 503
    assert world.sim("GET", "state")["down"] is True
    # A push already on its way when the downtime began may still land; after one session update
    # period nothing is in flight any more.
    kwh_at_start = world.ev(sid)["kwh"]  # type: ignore[index]
    per_update_kwh = 11_040 * 1.0 / 3600 / 1000  # power x session_update_s
    ev_where(world, sid, lambda e: e["kwh"] > kwh_at_start + 1.1 * per_update_kwh)
    seen = len(world.recorder.requests)
    newcomer = world.plug("A-AC1")  # plugged in while down: not pushed
    # Two more session update periods pass: each would have sent a PATCH.
    ev = ev_where(world, sid, lambda e: e["kwh"] > kwh_at_start + 3.2 * per_update_kwh)
    assert ev["power_w"] == 11_040  # EVs keep charging
    assert len(world.recorder.requests) == seen  # nothing was pushed

    world.sim("DELETE", "faults")
    after = wait_for(
        lambda: (
            [r for r in world.recorder.all("PATCH", "sessions/")[seen:] if r.path == base]
            if len(world.recorder.requests) > seen
            else None
        ),
        "pushes to resume",
    )
    assert len(after[0].body["charging_periods"]) == 1  # the current update only
    pulled = next(s for s in world.ocpi("GET", "sessions").json()["data"] if s["id"] == sid)
    pushed_periods = sum(
        len(r.body.get("charging_periods") or [])
        for r in world.recorder.all("PATCH", "sessions/")
        if r.path == base
    )
    assert pushed_periods < len(pulled["charging_periods"])  # missed periods were not replayed
    # The newcomer's Session PUT was never sent: nothing is replayed after the downtime.
    assert not [r for r in world.recorder.all("PUT", "sessions/") if r.path.endswith(newcomer)]


def test_downtime_with_a_value_ends_by_itself_and_results_due_meanwhile_are_not_sent(world: World) -> None:
    sid = world.plug("A-AC3")
    faults(world, {"kind": "SLOW_CALLBACK", "value": 0.3})
    set_profile(world, sid, (0, 8.0), name="during")
    faults(world, {"kind": "DOWNTIME", "value": 0.6})
    wait_for(
        lambda: command_of(world, "during")["result_error"] == "not sent: DOWNTIME", "the dropped result"
    )
    wait_for(lambda: world.sim("GET", "state")["down"] is False, "the downtime to end")
    assert world.ocpi("GET", "locations").status_code == 200
    assert posted_results(world, "during") == []
    # The profile was applied all the same: the charge point kept working.
    assert ev_where(world, sid, lambda e: e["profile_source"] == "set")["power_w"] == 8 * 230 * 3
