"""The planning engine's solver pool: processes or threads, the same plans; a dead solver is replaced."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ocpi221.locations import Location
from ocpi221.sessions import Session
from scsp.app import scsp_platform
from scsp.config import Config, OptimizerConfig, PlanningConfig
from scsp.dispatch.sender import Dispatcher
from scsp.events import SiteEvents
from scsp.planning.engine import Engine
from scsp.platform.client import OcpiClient
from scsp.records.grid import SiteSettings
from scsp.records.plans import StoredPlan
from scsp.store import Store
from tests.conftest import EXAMPLES, register_party

# A fixed time long past, where a test needs some time and the value does not matter.
EPOCH1 = datetime.fromtimestamp(1, UTC)


def site_with_sessions(tmp_path: Path, executor: str) -> tuple[Store, Config]:
    """Six AC sessions on a 30 kW site of a CPO whose resync is still due (so nothing is sent)."""
    store = Store(tmp_path / f"{executor}.db")
    store.migrate()
    _, party = register_party(store, "NL", "CPA")
    evses = [{"uid": f"E{i}", "status": "CHARGING", "last_updated": "2026-11-25T10:00:00Z",
              "capabilities": ["CHARGING_PROFILE_CAPABLE"],
              "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                              "max_voltage": 230, "max_amperage": 16, "last_updated": "2026-11-25T10:00:00Z"}]}
             for i in range(6)]
    doc = json.loads((EXAMPLES / "location_example.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id="LOC1", evses=evses)
    store.sessions.put_location(party.id, msgspec.convert(doc, Location))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # charging now: planned by a real clock
    for i in range(6):
        s = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
        s.update(country_code="NL", party_id="CPA", id=f"S{i}", evse_uid=f"E{i}", location_id="LOC1",
                 status="ACTIVE", kwh=0.0, start_date_time=stamp, last_updated=stamp)
        store.sessions.put(party.id, msgspec.convert(s, Session), now=datetime.now(UTC))
    store.grid.put_settings(SiteSettings(site_id="NL-CPA-LOC1", import_limit_w=30_000.0, failsafe_w=9_000.0,
                                         updated_at=EPOCH1))
    config = Config(db_path=str(tmp_path / f"{executor}.db"),
                    planning=PlanningConfig(horizon_h=2.0, slot_minutes=15),
                    optimizer=OptimizerConfig(executor=executor, workers=2))  # type: ignore[arg-type]
    return store, config


def plan_once(store: Store, config: Config, before: Any = None) -> list[StoredPlan]:
    """One planning pass of a real engine (its jobs not started); `before(engine)` runs first."""

    async def run() -> list[StoredPlan]:
        client = OcpiClient(country_code="NL", party_id="SCP")
        events = SiteEvents()
        dispatcher = Dispatcher(store=store, client=client, platform=scsp_platform(config), config=config,
                                events=events)
        engine = Engine(store=store, client=client, dispatcher=dispatcher, config=config, events=events)
        try:
            if before is not None:
                await before(engine)
            return await engine.plan()
        finally:
            engine.executor.shutdown(wait=True, cancel_futures=True)
            await client.aclose()

    return asyncio.run(run())


def test_solver_processes_and_threads_give_the_same_plan(tmp_path: Path) -> None:
    plans = {}
    for executor in ("process", "thread"):
        store, config = site_with_sessions(tmp_path, executor)
        [plan] = plan_once(store, config)
        assert plan.status == "OPTIMAL" and max(plan.site_power_w) <= 30_000.0 + 1e-3
        plans[executor] = [row.power_w for row in plan.sessions]
    assert plans["process"] == plans["thread"]


def test_a_solver_process_that_dies_costs_one_failsafe_plan_and_is_replaced(tmp_path: Path) -> None:
    store, config = site_with_sessions(tmp_path, "process")

    async def kill_the_solvers(engine: Engine) -> None:
        pool = engine.executor
        assert isinstance(pool, ProcessPoolExecutor)
        await engine.plan()  # starts the worker processes
        for process in list(pool._processes.values()):  # a native crash, as far as the pool can tell
            os.kill(process.pid, signal.SIGKILL)
        await asyncio.sleep(0.5)

    [plan] = plan_once(store, config, before=kill_the_solvers)
    # Every session got its failsafe share: within the failsafe limit, and the plan says so.
    assert (plan.status, plan.path) == ("FALLBACK", "failsafe")
    tails = [row.profile.charging_profile_period[-1].limit * 690 for row in plan.sessions if row.profile]
    assert len(tails) == 6 and sum(tails) <= 9_000.0
    # The next pass solves again, in a new pool.
    [again] = plan_once(store, config)
    assert again.status == "OPTIMAL"


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_an_executor_setting_is_checked(executor: str) -> None:
    assert OptimizerConfig(executor=executor).executor == executor  # type: ignore[arg-type]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"executor": "gpu"}, OptimizerConfig)


def test_a_site_is_never_planned_twice_at_once_and_a_busy_site_is_planned_again_after(tmp_path: Path) -> None:
    """Many passes at once (full and per site): each site runs one at a time; a pass that found it
    busy leaves it to be planned again right after the running one ends, never dropped."""
    store, config = site_with_sessions(tmp_path, "thread")
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    runs: list[str] = []

    async def run() -> int:
        client = OcpiClient(country_code="NL", party_id="SCP")
        events = SiteEvents()
        dispatcher = Dispatcher(store=store, client=client, platform=scsp_platform(config), config=config,
                                events=events)
        engine = Engine(store=store, client=client, dispatcher=dispatcher, config=config, events=events)
        real = engine._plan_site

        async def watched(site: Any, now: datetime, gate: Any = None) -> Any:
            runs.append(site.site_id)
            running[site.site_id] = running.get(site.site_id, 0) + 1
            most[site.site_id] = max(most.get(site.site_id, 0), running[site.site_id])
            try:
                await asyncio.sleep(0.05)  # long enough for the other passes to find the site busy
                return await real(site, now, gate)
            finally:
                running[site.site_id] -= 1

        engine._plan_site = watched  # type: ignore[method-assign]
        try:
            results = await asyncio.gather(*(engine.plan(only={"NL-CPA-LOC1"} if i % 2 else None)
                                             for i in range(8)))
            while engine._tasks:  # the re-plans of the passes that found the site busy
                await asyncio.gather(*engine._tasks)
            return sum(len(r) for r in results)
        finally:
            engine.executor.shutdown(wait=True, cancel_futures=True)
            await client.aclose()

    planned = asyncio.run(run())
    assert most == {"NL-CPA-LOC1": 1}
    assert 1 <= planned < 8  # the passes overlapped: some found the site busy
    assert len(runs) > planned  # ... and it was planned again after, once per busy spell


def test_a_pass_with_older_inputs_never_overwrites_a_newer_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Pass 1 gathers first but slowly; pass 2 gathers later and plans first: pass 1 leaves the site."""
    import time

    import scsp.planning.engine as engine_module

    store, config = site_with_sessions(tmp_path, "thread")
    real = engine_module.gather
    calls: list[int] = []

    def slow_first(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        first = len(calls) == 1
        result = real(*args, **kwargs)
        if first:
            time.sleep(0.5)  # its inputs are read; it is slow to hand them over
        return result

    monkeypatch.setattr(engine_module, "gather", slow_first)

    async def run() -> tuple[list[StoredPlan], list[StoredPlan]]:
        client = OcpiClient(country_code="NL", party_id="SCP")
        events = SiteEvents()
        dispatcher = Dispatcher(store=store, client=client, platform=scsp_platform(config), config=config,
                                events=events)
        engine = Engine(store=store, client=client, dispatcher=dispatcher, config=config, events=events)
        try:
            older = asyncio.ensure_future(engine.plan(only={"NL-CPA-LOC1"}))
            await asyncio.sleep(0.1)
            newer = await engine.plan(only={"NL-CPA-LOC1"})
            return await older, newer
        finally:
            engine.executor.shutdown(wait=True, cancel_futures=True)
            await client.aclose()

    older, newer = asyncio.run(run())
    assert len(newer) == 1 and older == []
    assert store.plans.latest("NL-CPA-LOC1") is not None
    assert store.plans.latest("NL-CPA-LOC1").id == newer[0].id  # type: ignore[union-attr]
