"""What DSO dashboards and aggregators read: sites, the current plan, compliance, history.

`GET /api/v1/sites`, `/sites/{site_id}`, `/sites/{site_id}/plan` (with `ETag`: poll cheaply with
`If-None-Match`), `/sites/{site_id}/compliance`, `/sites/{site_id}/history`. Every role may read,
within its site scope.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import numpy as np
from litestar import MediaType, Response, get, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingRateUnit
from ocpi221.locations import Location
from profiles import active_anchor, site_load_w
from profiles.timeline import profile_steps, value_at
from scsp import errors
from scsp.api.auth import (
    ALL_ROLES,
    ApiController,
    check_site,
    may_access,
    problem_responses,
    require_roles,
    require_site,
)
from scsp.api.common import SiteId
from scsp.api.history import FleetOut, SiteHistoryOut, fleet, plan_now, site_history
from scsp.records.commands import CommandKind
from scsp.records.grid import ApiKey, ApiRole
from scsp.records.plans import PlanSession, StoredPlan
from scsp.records.sessions import site_id
from scsp.store import Store


class ComplianceOut(msgspec.Struct, kw_only=True):
    """The newest ActiveChargingProfile of a session, judged against its plan."""

    received_at: datetime
    source: str  # push (the CPO's PUT) | get (our readback)
    verdict: str | None  # COMPLIANT | OVER_PLAN | UNDER_PLAN | NO_OVERLAP; None: no plan to judge by
    worst_excess_w: float | None
    compliant_fraction: float | None
    plan_id: int | None


class LastCommandOut(msgspec.Struct, kw_only=True):
    """The newest SetChargingProfile or DELETE of a session and where it stands."""

    id: str
    kind: str
    state: str
    response: str | None
    result: str | None
    created_at: datetime


class SessionPlanOut(msgspec.Struct, kw_only=True):
    """One session in a site's plan."""

    country_code: str
    party_id: str
    session_id: str
    controllable: bool
    reason: str | None
    power_w: list[float]
    energy_kwh: float
    shortfall_kwh: float
    profile: ChargingProfile | None
    compliance: ComplianceOut | None
    # What a person reads in a session table (None: not known).
    evse_uid: str | None = None
    label: str | None = None  # the driver's contract id where the CPO gives one, else the session id
    arrival: datetime | None = None  # the session's start
    departure: datetime | None = None  # as the driver's preferences say
    energy_need_kwh: float | None = None  # as the driver's preferences say
    delivered_kwh: float | None = None  # the CPO's `kwh`
    profile_state: str | None = None  # accepted | sent | none | the reason it is not steered
    last_command: LastCommandOut | None = None


class PlanOut(msgspec.Struct, kw_only=True):
    """A site's plan: per slot the limit, the planned power of the sessions we steer, the fixed load."""

    id: int
    site_id: str
    created_at: datetime
    start: datetime
    slot_s: int
    n_slots: int
    status: str  # OPTIMAL | FEASIBLE | FALLBACK | EMPTY (nothing to steer)
    path: str
    limit_w: list[float]
    site_power_w: list[float]
    fixed_load_w: list[float]
    failsafe_w: float | None
    arrival_reserve_w: float  # kept free for arrivals before their first profile: planned within limit - this
    jain_index: float | None
    warnings: list[str]
    sessions: list[SessionPlanOut]


class SiteOut(msgspec.Struct, kw_only=True):
    """A site at a glance: now = the newest plan's slot for the moment of the request (None: not covered)."""

    site_id: str
    name: str | None
    address: str | None
    time_zone: str | None
    sessions: int
    controlled: int
    plan_id: int | None
    planned_at: datetime | None
    limit_w_now: float | None
    planned_w_now: float | None
    fixed_load_w_now: float | None


class SiteComplianceOut(msgspec.Struct, kw_only=True):
    """Per session the newest verdict; per slot the site's load with every session counted once."""

    site_id: str
    plan_id: int | None
    start: datetime | None
    slot_s: int | None
    limit_w: list[float]
    applied_w: list[float | None]  # what the reporting sessions' charge points apply; None: no report
    unreported_w: list[float]  # what the plan gives the sessions without a report for the slot
    total_w: list[float]  # applied_w + unreported_w: each session once
    over_limit_w: float  # largest excess of total_w over the limit, W
    sessions: list[dict[str, Any]]


class SiteDeclared(msgspec.Struct, kw_only=True):
    """A site an admin declared."""

    site_id: str
    created: bool


class PlanBodies:
    """The encoded body and ETag of each site's current plan view, valid for one version."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple[str, str], tuple[tuple[int, int], bytes, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._builders: dict[tuple[str, str], threading.Lock] = {}

    def building(self, key: tuple[str, str]) -> threading.Lock:
        """The lock held while `key`'s body is built (one build per site at a time)."""
        with self._lock:
            lock = self._builders.get(key)
            if lock is None:
                lock = self._builders[key] = threading.Lock()
            return lock

    def get(self, key: tuple[str, str], version: tuple[int, int]) -> tuple[bytes, str] | None:
        """The body and ETag cached for `key` if they were built for `version`."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(key)
            return item[1], item[2]

    def put(self, key: tuple[str, str], version: tuple[int, int], body: bytes, etag: str) -> tuple[bytes, str]:
        """Keep a body and its ETag for `version` (the least recently used site drops out first)."""
        with self._lock:
            self._items[key] = (version, body, etag)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return body, etag


PLAN_BODIES = PlanBodies()


def entity_tag(body: bytes) -> str:
    """A strong ETag of a response body: it changes whenever a byte of the body does."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(header: str, etag: str) -> bool:
    """Whether `If-None-Match` matches the current ETag (RFC 9110 §13.1.2, weak comparison).

    `*` matches any current representation; otherwise the header is a comma-separated list of
    entity tags, each compared with `W/` taken off both sides.
    """
    if header.strip() == "*":
        return True

    def opaque(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    return any(opaque(t) == opaque(etag) for t in header.split(",") if t.strip())


def conditional(value: Any, if_none_match: str | None) -> Response[bytes]:
    """A JSON answer with its ETag, or 304 when `If-None-Match` names it (cheap polling for dashboards)."""
    body = msgspec.json.encode(value)
    etag = entity_tag(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and none_match(if_none_match, etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=MediaType.JSON, headers=headers)


# The `If-None-Match` request header of the conditional GETs.
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", required=False)]


def tagged(what: type, description: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses of a conditional GET answering `what`."""
    return {200: ResponseSpec(what, description=description),
            304: ResponseSpec(None, description="Not modified: the body is the one of the ETag sent")}


# Most buckets one history answer holds (a week in buckets of 5 minutes is 2016).
MAX_BUCKETS = 2100


def _plan_out(store: Store, plan: StoredPlan) -> PlanOut:
    actives = store.commands.latest_active_profiles([r.key for r in plan.sessions])
    sessions = []
    for row in plan.sessions:
        active = actives.get(row.key)
        stored = store.sessions.get(row.key)
        session = stored.session if stored is not None else None
        prefs = store.grid.preferences(row.key.country_code, row.key.party_id, row.key.session_id)
        control = store.commands.control(row.key)
        last = next(iter(store.commands.find(key=row.key, kinds=(CommandKind.SET, CommandKind.CLEAR), limit=1)),
                    None)
        state = (row.reason.value if row.reason is not None else "accepted" if control.accepted_profile is not None
                 else "sent" if control.sent_profile is not None else "none")
        sessions.append(SessionPlanOut(
            evse_uid=session.evse_uid if session else None,
            label=(session.cdr_token.contract_id if session and session.cdr_token and session.cdr_token.contract_id
                   else row.key.session_id),
            arrival=session.start_date_time if session else None,
            departure=prefs.departure if prefs else None, energy_need_kwh=prefs.energy_kwh if prefs else None,
            delivered_kwh=round(session.kwh, 3) if session else None, profile_state=state,
            last_command=None if last is None else LastCommandOut(
                id=last.id, kind=last.kind.value, state=last.state.value, response=last.response, result=last.result,
                created_at=last.created_at),
            country_code=row.key.country_code, party_id=row.key.party_id, session_id=row.key.session_id,
            controllable=row.controllable, reason=row.reason,
            power_w=row.power_w, energy_kwh=row.energy_kwh, shortfall_kwh=row.shortfall_kwh, profile=row.profile,
            compliance=None if active is None else ComplianceOut(
                received_at=active.received_at, source=active.source, verdict=active.verdict,
                worst_excess_w=active.worst_excess_w, compliant_fraction=active.compliance, plan_id=active.plan)))
    return PlanOut(id=plan.id, site_id=plan.site_id, created_at=plan.created_at, start=plan.start,
                   slot_s=plan.slot_s, n_slots=plan.n_slots, status=plan.status, path=plan.path,
                   limit_w=plan.limit_w, site_power_w=plan.site_power_w, fixed_load_w=plan.fixed_load_w,
                   failsafe_w=plan.detail.failsafe_w, arrival_reserve_w=plan.detail.arrival_reserve_w,
                   jain_index=plan.detail.jain_index,
                   warnings=list(plan.detail.warnings), sessions=sessions)


def list_sites(store: Store, key: ApiKey) -> list[SiteOut]:
    """Every site the key may see."""
    plans = store.plans.latest_all()
    locations = _site_locations(store)
    out = []
    for name in sorted(store.plans.site_ids()):
        if not may_access(key, name):
            continue
        out.append(_site_out(store, name, plans.get(name), locations.get(name)))
    return out


def _site_out(store: Store, name: str, plan: StoredPlan | None, location: Location | None) -> SiteOut:
    full = store.plans.get(plan.id) if plan is not None else None
    # "now" is the plan's slot for this moment, not its first slot (a plan may be minutes old).
    now = plan_now(plan, datetime.now(UTC))
    return SiteOut(
        site_id=name, name=location.name if location else None, address=location.address if location else None,
        time_zone=location.time_zone if location else None,
        sessions=len(full.sessions) if full else 0,
        controlled=sum(1 for s in full.sessions if s.controllable) if full else 0,
        plan_id=plan.id if plan else None, planned_at=plan.created_at if plan else None,
        limit_w_now=now[0], planned_w_now=now[1], fixed_load_w_now=now[2])


def _site_locations(store: Store) -> dict[str, Location]:
    """Each site's Location as its owner sent it: never another connection's name or address."""
    owners = store.sessions.site_owners()
    out: dict[str, Location] = {}
    for stored in store.sessions.locations():
        location = stored.location
        name = site_id(location.country_code, location.party_id, location.id)
        if owners.get(name, stored.party) == stored.party:
            out[name] = location
    return out


def _location(store: Store, name: str) -> Location | None:
    """The Location a site is, if its owner sent it."""
    return _site_locations(store).get(name)


def _applied_w(active: ActiveChargingProfile, plan: StoredPlan, row: PlanSession, anchor: datetime
               ) -> list[float | None]:
    """An ActiveChargingProfile on a plan's slot grid, in W (None where it says nothing)."""
    steps = profile_steps(active.charging_profile, anchor=anchor, ref=plan.start)
    if steps is None:
        return [None] * plan.n_slots
    per_unit = 1.0 if active.charging_profile.charging_rate_unit == ChargingRateUnit.W else row.facts.w_per_a
    values = value_at(steps, (np.arange(plan.n_slots) + 0.5) * plan.slot_s)
    return [None if v != v else min(float(v) * per_unit, row.evse_max_w) for v in values]


def site_compliance(store: Store, name: str) -> SiteComplianceOut:
    """Sum what the charge points of a site report applied, slot by slot, against the plan's limit."""
    plan = store.plans.latest(name)
    if plan is None:
        return SiteComplianceOut(site_id=name, plan_id=None, start=None, slot_s=None, limit_w=[], applied_w=[],
                                 unreported_w=[], total_w=[], over_limit_w=0.0, sessions=[])
    actives = store.commands.latest_active_profiles([r.key for r in plan.sessions])
    reports: list[list[float | None] | None] = []
    sessions = []
    for row in plan.sessions:
        record = actives.get(row.key)
        if record is None:
            reports.append(None)
            continue
        key = row.key
        sessions.append({"country_code": key.country_code, "party_id": key.party_id, "session_id": key.session_id,
                         "verdict": record.verdict, "worst_excess_w": record.worst_excess_w,
                         "compliant_fraction": record.compliance, "received_at": record.received_at,
                         "source": record.source})
        # What the charge point reports it applies, on this plan's slots (slot midpoints), in W.
        control = store.commands.control(key)
        sent = [p for p in (control.accepted_profile, control.sent_profile, row.profile) if p is not None]
        reports.append(_applied_w(record.profile, plan, row, active_anchor(record.profile, sent)))
    load = site_load_w([r.power_w for r in plan.sessions], reports, plan.n_slots)
    over = max((t - lim for t, lim in zip(load.total_w, plan.limit_w, strict=True)), default=0.0)
    return SiteComplianceOut(site_id=name, plan_id=plan.id, start=plan.start, slot_s=plan.slot_s,
                             limit_w=plan.limit_w, applied_w=load.reported_w, unreported_w=load.unreported_w,
                             total_w=load.total_w, over_limit_w=max(0.0, over), sessions=sessions)


class PlansController(ApiController):
    """Read-only views of sites, plans and compliance."""

    path = "/api/v1/sites"
    tags = ["sites"]

    @get("/", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True, responses=problem_responses(401, 403))
    def sites(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey]) -> list[SiteOut]:
        """List the sites this key may see, each with its current limit and planned power."""
        return list_sites(store, api_key)

    @get("/{site_id:str}", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True,
         responses=problem_responses(401, 403, 404))
    def site(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey], site_id: SiteId) -> SiteOut:
        """One site at a glance."""
        check_site(api_key, site_id)
        require_site(store, site_id)
        location = _location(store, site_id)
        return _site_out(store, site_id, store.plans.latest(site_id), location)

    @put("/{site_id:str}", guards=[require_roles(ApiRole.admin)], sync_to_thread=True, status_code=200,
         responses={201: ResponseSpec(SiteDeclared, description="The site was declared"),
                    **problem_responses(401, 403)})
    def declare(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey],
                site_id: SiteId) -> Response[SiteDeclared]:
        """Declare a site before any CPO names it (admin), e.g. to set its grid limit first.

        201 when it is new, 200 when it exists already (declared, or named by a CPO).
        """
        check_site(api_key, site_id)
        created = store.plans.declare_site(site_id, now=datetime.now(UTC))
        return Response(SiteDeclared(site_id=site_id, created=created), status_code=201 if created else 200)

    @get("/{site_id:str}/plan", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True,
         responses={200: ResponseSpec(PlanOut, description="The site's current plan"),
                    304: ResponseSpec(None, description="Not modified: the plan is the one of the ETag sent"),
                    **problem_responses(401, 403, 404)})
    def plan(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey], site_id: SiteId,
             if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None
             ) -> Response[bytes]:
        """The site's current plan: limit, planned power, fixed load and every session's profile.

        Carries an `ETag` that changes whenever anything in the body does (the plan, a session's
        compliance verdict); send it back as `If-None-Match` (RFC 9110 §13.1.2: weak comparison,
        lists and `*`) to get `304 Not Modified` while it holds.
        """
        check_site(api_key, site_id)
        require_site(store, site_id)
        plan_id = store.plans.latest_id(site_id)
        if plan_id is None:
            raise errors.NotFound(f"no plan for site {site_id!r} yet")
        # Plans never change once stored; what else the body shows (sessions, preferences,
        # commands, compliance) changes only by a write of this process, each of which raises
        # `generation`: while both hold, the encoded body and its ETag do.
        version = (plan_id, store.db.generation)
        key = (str(store.path), site_id)
        cached = PLAN_BODIES.get(key, version)
        if cached is None:
            # One request builds a site's body; the others polling it meanwhile wait and take it.
            with PLAN_BODIES.building(key):
                cached = PLAN_BODIES.get(key, version)
                if cached is None:
                    plan = store.plans.get(plan_id)
                    if plan is None:  # pruned between the two reads: a newer one exists
                        raise errors.NotFound(f"no plan for site {site_id!r} yet")
                    body = msgspec.json.encode(_plan_out(store, plan))
                    cached = PLAN_BODIES.put(key, version, body, entity_tag(body))
        body, etag = cached
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if if_none_match is not None and none_match(if_none_match, etag):
            return Response(b"", status_code=304, headers=headers)
        return Response(body, media_type=MediaType.JSON, headers=headers)

    @get("/{site_id:str}/compliance", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True,
         responses={**tagged(SiteComplianceOut, "The site's compliance"), **problem_responses(401, 403, 404)})
    def compliance(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey],
                   site_id: SiteId, if_none_match: IfNoneMatch = None) -> Response[bytes]:
        """What the charge points report they apply, per session and summed per slot, against the limit.

        `ETag` + `If-None-Match` like the plan.
        """
        check_site(api_key, site_id)
        require_site(store, site_id)
        return conditional(site_compliance(store, site_id), if_none_match)

    @get("/{site_id:str}/history", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True,
         responses={**tagged(SiteHistoryOut, "The site's past per bucket"), **problem_responses(401, 403, 404, 422)})
    def history(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey], site_id: SiteId,
                hours: Annotated[float, QueryParameter(gt=0, le=24 * 7, description="The last N hours.")] = 24.0,
                bucket_s: Annotated[int, QueryParameter(ge=10, le=3600, description="Bucket length, s.")] = 300,
                if_none_match: IfNoneMatch = None) -> Response[bytes]:
        """The site's past per time bucket: limit, planned, applied, delivered power and fixed load (W).

        Each value is the bucket's time-weighted mean: the limit, planned power and fixed load of the
        plan in force at each moment; `applied_w` what the charge points reported applying;
        `delivered_w` the energy the CPO reported delivered (session `kwh`) over the bucket. None
        where nothing is known. `cycles` lists each planning cycle with its values when it was made.
        At most `MAX_BUCKETS` buckets: lengthen `bucket_s` for long windows. `ETag` + `If-None-Match`.
        """
        check_site(api_key, site_id)
        require_site(store, site_id)
        if hours * 3600 / bucket_s > MAX_BUCKETS:
            shortest = math.ceil(hours * 3600 / MAX_BUCKETS)
            raise errors.InvalidParameters(f"bucket_s: {hours} h in buckets of {bucket_s} s is more than "
                                           f"{MAX_BUCKETS} buckets; take at least {shortest} s")
        now = datetime.now(UTC)
        history = site_history(store, site_id, since=now - timedelta(hours=hours), until=now, bucket_s=bucket_s,
                               now=now)
        return conditional(history, if_none_match)


class FleetController(ApiController):
    """`GET /api/v1/fleet`: every site in a key's scope at a glance (a DSO's overview)."""

    path = "/api/v1/fleet"
    tags = ["sites"]

    @get("/", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True,
         responses={**tagged(FleetOut, "Every site in scope"), **problem_responses(401, 422)})
    def fleet(self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey],
              hours: Annotated[float, QueryParameter(gt=0, le=24 * 7,
                                                     description="The sparklines' window, hours.")] = 24.0,
              if_none_match: IfNoneMatch = None) -> Response[bytes]:
        """Per site in scope: limit, planned, applied power now, planned peak ahead, sessions (managed),
        compliance verdict counts, the plan's age and a sparkline of delivered power; and their sums."""
        locations = {site_id(s.location.country_code, s.location.party_id, s.location.id): s.location
                     for s in store.sessions.locations()}
        sites = [(name, locations[name].name if name in locations else None,
                  locations[name].time_zone if name in locations else None)
                 for name in sorted(store.plans.site_ids()) if may_access(api_key, name)]
        return conditional(fleet(store, sites, now=datetime.now(UTC), hours=hours), if_none_match)
