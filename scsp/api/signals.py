"""Site signals: `PUT|POST /api/v1/sites/{site_id}/signals/{kind}` and `GET /api/v1/sites/{site_id}/signals`.

A signal is a time series for one site and one kind, from one source, with an expiry (DESIGN.md
"Signal"). The rules every client relies on are in `SUBMISSION_RULES`, which is also the OpenAPI
description of the submitting operations.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from litestar import HttpMethod, get, route
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from scsp.api.auth import ALL_ROLES, ApiController, check_site, problem_responses, require_roles, require_site
from scsp.api.common import ApiInput, FieldErrors, SiteId, utcnow
from scsp.events import SiteEvents
from scsp.records.grid import ApiKey, SignalKind, SignalPoint
from scsp.store import Store

log = logging.getLogger("scsp.api")

# Allowed values per kind, inclusive. Limits and carbon intensity cannot be negative; prices can
# (negative day-ahead prices happen). The upper bounds reject unit mistakes (mW for W) and keep
# optimizer coefficients well-conditioned.
VALUE_RANGE: dict[SignalKind, tuple[float, float]] = {
    SignalKind.IMPORT_LIMIT: (0.0, 1e9),
    SignalKind.PRICE: (-1e6, 1e6),
    SignalKind.CARBON: (0.0, 1e5),
}

DAY_S = 86_400
# A point may end at most this far ahead: the planning horizon is 24 h; a week covers day-ahead
# markets and weekly DSO schedules with room to spare.
HORIZON_S = 7 * DAY_S
# A point may start at most this far back (an older start is almost surely a client clock or time-zone bug).
PAST_S = 7 * DAY_S
# Without `expires_at`, a submission expires this long after the end of its last point.
DEFAULT_EXPIRY_S = 3_600
# `expires_at` may lie at most this far ahead (the horizon plus a day).
MAX_EXPIRY_S = HORIZON_S + DAY_S
# Points per submission: a week of 5-minute points.
MAX_POINTS = 2_016

SiteChanged = Callable[[str], None]

SUBMISSION_RULES = f"""\
Submit a time series for one site and one kind: `import_limit` (W), `price` (per kWh) or `carbon`
(g/kWh). PUT and POST do the same.

**Validation** (422 naming the field, nothing stored): 1 to {MAX_POINTS} points, each `start < end`,
ordered and non-overlapping (a point may start where the previous one ends); finite values,
`import_limit >= 0`, `carbon >= 0`, `price` may be negative; no point starts more than 7 days in the
past or ends more than 7 days ahead, and the last point ends in the future. DateTimes without an
offset are UTC.

**Replacement**: a submission covers the range from its first start to its last end. Points stored
earlier **from the same source and kind** inside that range are replaced (gaps between the new points
included); points reaching into the range are trimmed to the part outside it. Other sources are
never touched: sources coexist.

**How the planner combines sources**: for `import_limit` it uses, at each moment, the minimum of
the site's grid connection and every unexpired `import_limit` point of every source (a stale or
missing limit never raises the limit). For `price` and `carbon` it uses the value from the most
recently submitted source covering that moment.

**Expiry**: `expires_at` (default: the end of the last point + {DEFAULT_EXPIRY_S // 3600} h, at most
{MAX_EXPIRY_S // DAY_S} days ahead). Once expired, the points are ignored, also before their end:
a source can make a limit lapse unless it is confirmed in time.

**Idempotent**: replaying a submission identical to what is stored for that source and range (same
points, values and expiry) changes nothing and answers 200 with the same body, including the
original `submitted_at`. The answer lists the points stored for this submission.
"""


class SignalPointIn(ApiInput, kw_only=True, forbid_unknown_fields=True):
    """One point: `value` holds from `start` (inclusive) to `end` (exclusive)."""

    start: datetime
    end: datetime
    value: float


Source = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[!-~]([ -~]*[!-~])?$",
        description="Who sends this series (e.g. `dso-east`, `day-ahead`): printable ASCII, 1-64 characters.",
    ),
]


class SignalSubmission(ApiInput, kw_only=True, forbid_unknown_fields=True):
    """A time series for one site and kind, from one source."""

    source: Source
    expires_at: datetime | None = None
    points: Annotated[list[SignalPointIn], msgspec.Meta(min_length=1, max_length=MAX_POINTS)]


class SignalPointOut(msgspec.Struct, kw_only=True):
    """One stored point."""

    start: datetime
    end: datetime
    value: float


class SignalSubmissionResult(msgspec.Struct, kw_only=True):
    """What is stored for a submission."""

    site_id: str
    kind: SignalKind
    source: str
    expires_at: datetime
    submitted_at: datetime
    points: list[SignalPointOut]


class StoredSignal(msgspec.Struct, kw_only=True):
    """One unexpired point of a site signal."""

    kind: SignalKind
    source: str
    start: datetime
    end: datetime
    value: float
    expires_at: datetime
    submitted_at: datetime


class SiteSignals(msgspec.Struct, kw_only=True):
    """The unexpired signal points of a site, ordered by kind, start and source."""

    site_id: str
    signals: list[StoredSignal]


def _range_text(low: float, high: float) -> str:
    return f"must be between {low:g} and {high:g}"


def validate_submission(kind: SignalKind, body: SignalSubmission, *, now: datetime) -> list[SignalPoint]:
    """The submission as storable points, or `InvalidParameters` naming every invalid field."""
    problems = FieldErrors()
    low, high = VALUE_RANGE[kind]
    spans = [(p.start, p.end) for p in body.points]
    for i, (point, (start, end)) in enumerate(zip(body.points, spans, strict=True)):
        if end <= start:
            problems.add(f"points[{i}].end", "must be after start")
        if i > 0 and start < spans[i - 1][1]:
            problems.add(
                f"points[{i}].start",
                f"must not be before points[{i - 1}].end (points must be ordered and must not overlap)",
            )
        if start < now - timedelta(seconds=PAST_S):
            problems.add(f"points[{i}].start", f"must not be more than {PAST_S // DAY_S} days in the past")
        if end > now + timedelta(seconds=HORIZON_S):
            problems.add(f"points[{i}].end", f"must not be more than {HORIZON_S // DAY_S} days ahead")
        if not math.isfinite(point.value):
            problems.add(f"points[{i}].value", "must be a finite number")
        elif not low <= point.value <= high:
            problems.add(f"points[{i}].value", f"{_range_text(low, high)} for {kind.value}")
    last, last_end = len(spans) - 1, max(end for _, end in spans)
    if last_end <= now:
        problems.add(
            f"points[{last}].end", "must be in the future (the submission lies entirely in the past)"
        )
    if body.expires_at is None:
        expires_at = last_end + timedelta(seconds=DEFAULT_EXPIRY_S)
    else:
        expires_at = body.expires_at
        if expires_at <= now:
            problems.add("expires_at", "must be in the future")
        elif expires_at > now + timedelta(seconds=MAX_EXPIRY_S):
            problems.add("expires_at", f"must not be more than {MAX_EXPIRY_S // DAY_S} days ahead")
    problems.raise_any()
    return [
        SignalPoint(
            kind=kind,
            source=body.source,
            start=start,
            end=end,
            value=float(p.value),
            expires_at=expires_at,
            submitted_at=now,
        )
        for p, (start, end) in zip(body.points, spans, strict=True)
    ]


def submit_signals(
    store: Store,
    key: ApiKey,
    site_id: str,
    kind: SignalKind,
    body: SignalSubmission,
    *,
    now: datetime,
    changed: SiteChanged,
) -> SignalSubmissionResult:
    """Validate and store a submission (see `SUBMISSION_RULES`); the site is re-planned when it changed."""
    check_site(key, site_id)
    require_site(store, site_id)
    points = validate_submission(kind, body, now=now)
    was_changed, stored = store.grid.replace_signals(site_id, points, now=now)
    log.info("signal accepted", extra={"site": site_id, "kind": kind.value, "source": body.source,
                                       "points": len(stored), "changed": was_changed, "api_key": key.id})
    if was_changed:
        changed(site_id)
    return SignalSubmissionResult(
        site_id=site_id,
        kind=kind,
        source=body.source,
        expires_at=stored[0].expires_at,
        submitted_at=stored[0].submitted_at,
        points=[SignalPointOut(start=p.start, end=p.end, value=p.value) for p in stored],
    )


def read_signals(
    store: Store, key: ApiKey, site_id: str, kind: SignalKind | None, *, now: datetime
) -> SiteSignals:
    """The unexpired points of a site (of one kind, or all)."""
    check_site(key, site_id)
    require_site(store, site_id)
    points = store.grid.site_signals(site_id, kind, now=now)
    return SiteSignals(
        site_id=site_id,
        signals=[
            StoredSignal(
                kind=p.kind,
                source=p.source,
                start=p.start,
                end=p.end,
                value=p.value,
                expires_at=p.expires_at,
                submitted_at=p.submitted_at,
            )
            for p in points
        ],
    )


Kind = Annotated[
    SignalKind, PathParameter(description="import_limit (W), price (per kWh) or carbon (g/kWh).")
]


READ_DESCRIPTION = """\
Every unexpired point stored for the site (any role), of every source, ordered by kind, start and
source; `?kind=` limits it to one kind. Each point carries its source, expiry and submission time.
"""


class SignalsController(ApiController):
    """`/api/v1/sites/{site_id}/signals`: limits, prices and carbon intensity per site."""

    path = "/api/v1/sites/{site_id:str}/signals"
    tags = ["signals"]

    @get(
        "/",
        sync_to_thread=True,
        guards=[require_roles(*ALL_ROLES)],
        summary="Read a site's signals",
        description=READ_DESCRIPTION,
        responses=problem_responses(401, 403, 404, 422),
    )
    def read(
        self,
        store: NamedDependency[Store],
        api_key: NamedDependency[ApiKey],
        site_id: SiteId,
        kind: Annotated[
            SignalKind | None, QueryParameter(description="Only this kind; all when absent.")
        ] = None,
    ) -> SiteSignals:
        """Every unexpired point stored for the site, of every source (of one kind with `?kind=`)."""
        return read_signals(store, api_key, site_id, kind, now=utcnow())

    @route(
        "/{kind:str}",
        http_method=[HttpMethod.PUT, HttpMethod.POST],
        sync_to_thread=True,
        guards=[require_roles(*ALL_ROLES)],
        status_code=200,
        summary="Submit a signal time series (PUT, or POST for clients that only POST)",
        description=SUBMISSION_RULES,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    def replace(
        self,
        store: NamedDependency[Store],
        events: NamedDependency[SiteEvents],
        api_key: NamedDependency[ApiKey],
        site_id: SiteId,
        kind: Kind,
        data: JSONBody[SignalSubmission],
    ) -> SignalSubmissionResult:
        """Store a time series: it replaces the same source's points over the range it covers.

        Sources coexist; the planner takes the minimum of every source's import limit and the grid
        connection, and for price and carbon the most recently submitted source. Replays are
        idempotent. Full rules: `SUBMISSION_RULES`.
        """
        return submit_signals(store, api_key, site_id, kind, data, now=utcnow(), changed=events.site_changed)
