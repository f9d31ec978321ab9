"""The planning engine: APScheduler only triggers; every job reads its state from SQLite.

Jobs (DESIGN.md "The planning cycle"):
- plan every `planning.interval_s`, and `planning.debounce_s` after an event that changes a site;
- read back ActiveChargingProfiles every `readback.interval_s`;
- expire commands whose `timeout` passed (-> `unknown`, then reconcile with a GET);
- resync parties that need it (new registration, start-up, back after being unreachable) and probe
  unreachable ones; pull everything on the slow schedule with splay.
There is no lock over all planning: each site is solved, saved and dispatched on its own, under its
own claim, so a site is never planned twice at once, and a site waiting for its CPO's results (or a
slow solve) delays no other site. A site that is busy when a pass wants it is planned again right
after its current run.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from collections.abc import Callable, Coroutine
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

import optimizer
from scsp.config import Config
from scsp.dispatch.sender import Dispatcher
from scsp.events import SiteEvents
from scsp.faults import PlanningStage
from scsp.ingest import pull
from scsp.ingest.sessions import replan_party
from scsp.planning.gather import SiteInput, gather
from scsp.planning.record import plan_record
from scsp.planning.solve import solve_site
from scsp.platform.client import OcpiClient
from scsp.records.commands import CommandKind, CommandReason
from scsp.records.parties import Party, PartyStatus
from scsp.records.plans import StoredPlan
from scsp.records.sessions import SessionKey
from scsp.store import Store

log = logging.getLogger("scsp.engine")

# How often the small housekeeping jobs run (s): command timeouts, resync of parties that need it,
# probes of unreachable parties. Short, because a result's timeout is often under a minute.
HOUSEKEEPING_S = 5.0
# Probe an unreachable party at most this often (s).
PROBE_INTERVAL_S = 30.0
# Plans older than this are pruned, except each site's newest (s): a week of history for dashboards.
PLAN_RETENTION_S = 7 * 24 * 3600


def solver_executor(config: Config) -> Executor:
    """Where sites are solved (`optimizer.executor`): worker processes, threads or a Dask cluster.

    Processes start from a fork server (forking the service itself, with its threads and open
    database connections, is unsafe), on the first solve; each imports numpy and scipy once.
    """
    workers = config.optimizer.workers
    if config.optimizer.executor == "dask" and config.optimizer.scheduler is not None:
        from scsp.planning.executors import DaskExecutor  # imports dask.distributed: only when used

        # A lost worker or a task past its deadline fails its site: that site's failsafe plan.
        return DaskExecutor(config.optimizer.scheduler, task_timeout_s=config.optimizer.task_timeout_s)
    if config.optimizer.executor == "process":
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                                   initializer=_leave_interrupts_to_the_service)
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="solve")


def _leave_interrupts_to_the_service() -> None:
    """In a solver process: ignore Ctrl-C, which the terminal sends to the whole process group.

    The service shuts the pool down itself; a worker interrupted mid-solve would only print a
    traceback and break the pool.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Engine:
    """Runs the planning cycle and its companion jobs inside the service's event loop."""

    def __init__(self, *, store: Store, client: OcpiClient, dispatcher: Dispatcher, config: Config,
                 events: SiteEvents) -> None:
        self.store = store
        self.client = client
        self.dispatcher = dispatcher
        self.config = config
        self.events = events
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.executor = solver_executor(config)
        self.options = optimizer.SolveOptions(milp_time_limit_s=config.optimizer.milp_time_limit_s,
                                              milp_max_variables=config.optimizer.milp_max_cells)
        # Sites being planned now (gather -> solve -> save -> dispatch), and busy sites a later pass
        # wanted meanwhile: those are planned again once their current run ends.
        self._busy: set[str] = set()
        self._again: set[str] = set()
        # When the gather behind each site's newest plan began: an older gather never overwrites it.
        self._gathered: dict[str, float] = {}
        self._stopping = False
        self._debounce: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_probe: dict[int, float] = {}
        # The parties registered at the last housekeeping: one that left (it unregistered, or an
        # operator removed it) has its sites re-planned with its sessions as orphans.
        self._registered: set[int] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Reconcile after a restart, then start the jobs."""
        loop = asyncio.get_running_loop()
        abandoned = await asyncio.to_thread(self.store.commands.abandon_in_flight)
        if abandoned:
            log.info("requests of the previous run marked unknown (never resent)", extra={"count": abandoned})
        for party in await asyncio.to_thread(self.store.parties.all, include_unregistered=False):
            if party.status == PartyStatus.REGISTERED:
                await asyncio.to_thread(self.store.sync.resync_due, party.id)
        self.events.bind(loop, self._on_event)
        planning, readback = self.config.planning, self.config.readback
        self.scheduler.configure(event_loop=loop)
        self.scheduler.add_job(self.plan, "interval", seconds=planning.interval_s, id="plan", coalesce=True,
                               max_instances=1, replace_existing=True, next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.readback, "interval", seconds=readback.interval_s, id="readback",
                               coalesce=True, max_instances=1, replace_existing=True)
        self.scheduler.add_job(self.housekeeping, "interval", seconds=HOUSEKEEPING_S, id="housekeeping",
                               coalesce=True, max_instances=1, replace_existing=True,
                               next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.pull_all, "interval", seconds=planning.pull_interval_s, id="pull",
                               coalesce=True, max_instances=1, replace_existing=True,
                               jitter=int(planning.pull_splay_s) or None)
        self.scheduler.add_job(self.prune, "interval", hours=6, id="prune", coalesce=True, max_instances=1,
                               replace_existing=True)
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop the jobs; wait for running tasks."""
        self._stopping = True
        self.events.unbind()
        if self._debounce is not None:
            self._debounce.cancel()
        self.scheduler.shutdown(wait=False)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_event(self) -> None:
        """A site changed: plan the changed sites `debounce_s` from the first event of a burst, or at
        once after an arrival (a new EV draws its maximum until its first profile)."""
        if self.events.take_urgent():
            if self._debounce is not None:
                self._debounce.cancel()
            self._debounced()
        elif self._debounce is None:
            loop = asyncio.get_running_loop()
            self._debounce = loop.call_later(self.config.planning.debounce_s, self._debounced)

    def _debounced(self) -> None:
        self._debounce = None
        self._spawn(self.plan_changed())

    # -- planning -------------------------------------------------------------------------------
    async def plan_changed(self) -> None:
        """Plan the sites that changed since the last pass."""
        sites = self.events.drain()
        if sites:
            await self.plan(only=sites)

    async def plan(self, only: set[str] | None = None) -> list[StoredPlan]:
        """One planning pass: gather -> solve (sites in parallel) -> persist -> profiles -> dispatch."""
        try:
            return await self._plan(only)
        except asyncio.CancelledError:
            # Shutdown while a pass waited or ran: the next start plans afresh from the database.
            return []

    async def _plan(self, only: set[str] | None) -> list[StoredPlan]:
        if only is None:
            self.events.drain()  # a full pass covers whatever changed
        else:
            only = self._claimable(only)
            if not only:
                return []
        now = _now()
        gathered_at = asyncio.get_running_loop().time()
        try:
            sites = await asyncio.to_thread(gather, self.store, self.config, now, only=only)
        except Exception:
            log.exception("gathering the sites failed")
            return []
        # Claim the sites gathered (no await between the check and the claim: one event loop).
        mine = [site for site in sites if self._claim(site.site_id, gathered_at)]
        gate = None
        if mine and self.config.planning.dispatch:
            try:
                gate = await asyncio.to_thread(self.dispatcher.send_gate)
            except BaseException:
                for site in mine:
                    self._release(site.site_id)
                raise
        results = await asyncio.gather(*(self._plan_site(site, now, gate) for site in mine))
        plans = [plan for plan, _ in results if plan is not None]
        outcomes: dict[str, int] = {}
        for _, counts in results:
            for name, value in counts.items():
                outcomes[name] = outcomes.get(name, 0) + value
        # A cycle that sends nothing changed nothing that matters: DEBUG; one that sends, INFO.
        sent = sum(v for k, v in outcomes.items() if k not in ("held_back", "unreachable"))
        log.log(logging.INFO if sent else logging.DEBUG, "planned",
                extra={"sites": len(plans), "scope": "all" if only is None else "changed",
                       "busy": len(sites) - len(mine), **{f"sent_{k.lower()}": v for k, v in outcomes.items()}})
        return plans

    def _claimable(self, only: set[str]) -> set[str]:
        """The sites of `only` not being planned now; the busy ones are planned again after their run."""
        busy = only & self._busy
        self._again |= busy
        return only - busy

    def _claim(self, site: str, gathered_at: float) -> bool:
        """Take the site for a pass whose gather began at `gathered_at` (event loop time).

        Busy: planned again after. Already planned from a later gather (a pass that began after this
        one finished first): this pass's inputs are older, so it leaves the site alone.
        """
        if site in self._busy:
            self._again.add(site)
            return False
        if self._gathered.get(site, float("-inf")) > gathered_at:
            return False
        self._busy.add(site)
        self._gathered[site] = gathered_at
        return True

    def _release(self, site: str) -> None:
        self._busy.discard(site)
        if site in self._again:
            self._again.discard(site)
            if not self._stopping:
                # Right away, not after another debounce: the change (often an arrival) already waited.
                self._spawn(self._plan_again(site))

    async def _plan_again(self, site: str) -> None:
        await self.plan(only={site})

    async def _plan_site(self, site: SiteInput, now: datetime,
                         gate: Callable[[Party, SessionKey], bool] | None = None
                         ) -> tuple[StoredPlan | None, dict[str, int]]:
        """Solve, save and dispatch one claimed site; its claim is released whatever happens."""
        try:
            plan = (await self._solve_all([site]))[0]
            record = plan_record(site, plan, self.config, now)
            stored = await asyncio.to_thread(self.store.plans.save, record)
            # Dispatch waits for this site's decreases to be applied, never for another site's.
            outcomes = (await self.dispatcher.dispatch([stored], now, gate) if self.config.planning.dispatch
                        else {})
            return stored, outcomes
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - contained per site: it keeps its previous plan
            self.store.faults.site_failed(site.site_id, PlanningStage.PROFILES, exc)
            return None, {}
        finally:
            self._release(site.site_id)

    async def _solve_all(self, sites: list[SiteInput]) -> list[optimizer.Plan | None]:
        """Solve the sites in parallel on the executor; None for a site whose solve failed.

        The optimizer has its own fallback for solver trouble; a failure here is a problem we built
        wrong, or a solver process that died (a crash of the native solver takes only its worker
        down: the pool is replaced). `plan_record` then gives every session its failsafe share.
        """
        loop = asyncio.get_running_loop()
        executor = self.executor

        async def solve(site: SiteInput) -> optimizer.Plan | None:
            # A broken pool refuses the submission itself, before any future exists.
            return await loop.run_in_executor(executor, solve_site, site, self.options)

        results = await asyncio.gather(*(solve(site) for site in sites), return_exceptions=True)
        solved: list[optimizer.Plan | None] = []
        for site, result in zip(sites, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result  # shutting down
            if isinstance(result, BaseException):
                self.store.faults.site_failed(site.site_id, PlanningStage.SOLVE, result)
                if isinstance(result, BrokenExecutor) and self.executor is executor:
                    executor.shutdown(wait=False, cancel_futures=True)
                    self.executor = solver_executor(self.config)
                solved.append(None)
            else:
                solved.append(result)
        return solved

    # -- readback, timeouts, sync ---------------------------------------------------------------
    async def readback(self) -> int:
        """The readback job: GET the ActiveChargingProfile of every session we manage."""
        return await self.dispatcher.read_back(_now())

    async def housekeeping(self) -> None:
        """Expire commands, resync parties that need it, probe unreachable ones."""
        now = _now()
        expired = await asyncio.to_thread(self.store.commands.expire, now=now)
        for command in expired:
            log.warning("no result before the timeout: outcome unknown",
                        extra={"command": command.id, "kind": command.kind, "session": command.key.session_id})
            if command.kind == CommandKind.SET:
                # ocpi-notes §10.9: no retries in OCPI; reconcile with a GET ActiveChargingProfile.
                party = await asyncio.to_thread(self.store.parties.get, command.key.party)
                if await asyncio.to_thread(self.dispatcher.may_send, party, command.key):
                    await self.dispatcher.send_get(party, command.key, now, reason=CommandReason.RECONCILE)
        loop = asyncio.get_running_loop()
        parties = await asyncio.to_thread(self.store.parties.all, include_unregistered=False)
        registered = {p.id for p in parties if p.status == PartyStatus.REGISTERED}
        for gone in sorted((self._registered or set()) - registered):
            log.info("connection closed: its sessions are orphans until they end", extra={"party": gone})
            await asyncio.to_thread(replan_party, self.store, gone, self.events.site_changed)
        self._registered = registered
        for party in parties:
            if party.status != PartyStatus.REGISTERED or not party.reachable:
                continue
            state = await asyncio.to_thread(self.store.sync.state, party.id)
            if state.unreachable_since is not None:
                last = self._last_probe.get(party.id, 0.0)
                if loop.time() - last < PROBE_INTERVAL_S:
                    continue
                self._last_probe[party.id] = loop.time()
                if not await pull.answers(self.client, party):
                    continue
                log.info("CPO answers again: resync", extra={"party": party.handle})
                await asyncio.to_thread(self.store.sync.resync_due, party.id)
                state = await asyncio.to_thread(self.store.sync.state, party.id)
            if state.needs_resync:
                await pull.resync(self.store, self.client, party, self.events, now=now)

    async def pull_all(self) -> None:
        """The slow pull of every reachable party."""
        now = _now()
        for party in await asyncio.to_thread(self.store.parties.all, include_unregistered=False):
            state = await asyncio.to_thread(self.store.sync.state, party.id)
            if party.status == PartyStatus.REGISTERED and party.reachable and state.unreachable_since is None:
                await pull.resync(self.store, self.client, party, self.events, now=now)

    async def prune(self) -> None:
        """Drop old plans and energy samples (each site's newest plan, each session's newest sample stay)."""
        before = _now() - timedelta(seconds=PLAN_RETENTION_S)
        await asyncio.to_thread(self.store.plans.prune, before=before)
        await asyncio.to_thread(self.store.sessions.prune_energy, before=before)
