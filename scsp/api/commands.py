"""The commands log: every ChargingProfiles request we made, what the CPO answered and what came of it.

`GET /api/v1/commands?site=&session=&since=&kind=&limit=` answers "what did we send and what did
the CPO say": per request its kind (set = PUT SetChargingProfile, get = GET ActiveChargingProfile,
clear = DELETE), the profile sent, the synchronous ChargingProfileResponse, the asynchronous
ChargingProfileResult posted to our response_url, the times of each and why it was sent. Every role
may read, within its site scope: a key with sites sees only their commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ocpi221.chargingprofiles import ChargingProfile
from scsp.api.auth import ALL_ROLES, ApiController, check_site, problem_responses, require_roles, require_site
from scsp.api.common import as_utc
from scsp.api.plans import IfNoneMatch, conditional, tagged
from scsp.records.commands import Command, CommandKind
from scsp.records.grid import ApiKey
from scsp.store import Store

# Most commands one answer lists (newest first); `since` pages further back.
MAX_LIMIT = 1000


class CommandOut(msgspec.Struct, kw_only=True):
    """One ChargingProfiles request we made and its outcome."""

    id: str  # also the X-Correlation-ID of the request and the last part of its response_url
    kind: str  # set | get | clear
    site_id: str | None
    country_code: str
    party_id: str
    session_id: str
    reason: str | None  # why it was sent
    state: str  # pending | awaiting_result | refused | completed | failed | unknown
    plan_id: int | None
    profile: ChargingProfile | None  # the profile sent (set only)
    response: str | None  # the CPO's synchronous ChargingProfileResponseType
    result: str | None  # the charge point's ChargingProfileResultType (posted to our response_url)
    error: str | None  # why the request itself failed
    created_at: datetime
    responded_at: datetime | None
    timeout_at: datetime | None  # the CPO's `timeout`: the result is due by then
    result_at: datetime | None
    response_ms: int | None  # responded_at - created_at, milliseconds (whole seconds apart, as stored)
    result_ms: int | None  # result_at - created_at, milliseconds


def _ms(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else int(round((end - start).total_seconds() * 1000))


def command_out(command: Command) -> CommandOut:
    """A stored command as the log shows it."""
    key = command.key
    return CommandOut(
        id=command.id, kind=command.kind.value, site_id=command.site_id, country_code=key.country_code,
        party_id=key.party_id, session_id=key.session_id, reason=command.reason, state=command.state.value,
        plan_id=command.plan, profile=command.profile, response=command.response, result=command.result,
        error=command.error, created_at=command.created_at, responded_at=command.responded_at,
        timeout_at=command.timeout_at, result_at=command.result_at,
        response_ms=_ms(command.created_at, command.responded_at), result_ms=_ms(command.created_at, command.result_at))


def commands_log(store: Store, key: ApiKey, *, site: str | None, session: str | None, since: datetime | None,
                 kind: Sequence[CommandKind] | None, limit: int) -> list[CommandOut]:
    """The commands the key may see, newest first (403 / 404 for a site out of scope / unknown)."""
    sites: list[str] | None
    if site is not None:
        check_site(key, site)
        require_site(store, site)
        sites = [site]
    else:
        sites = list(key.sites) if key.sites else None
    found = store.commands.log(sites=sites, session_id=session, since=None if since is None else as_utc(since),
                               kinds=tuple(kind) if kind else None, limit=limit)
    return [command_out(c) for c in found]


class CommandsController(ApiController):
    """`GET /api/v1/commands`: the ChargingProfiles requests we made."""

    path = "/api/v1/commands"
    tags = ["commands"]

    @get("/", guards=[require_roles(*ALL_ROLES)], sync_to_thread=True,
         responses={**tagged(list[CommandOut], "The commands, newest first"), **problem_responses(401, 403, 404, 422)})
    def commands(
        self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey],
        site: Annotated[str | None, QueryParameter(min_length=1, max_length=80, pattern=r"^[!-~]+$",
                                                   description="Only this site (`CC-PID-location_id`).")] = None,
        session: Annotated[str | None, QueryParameter(min_length=1, max_length=36,
                                                      description="Only this session id (the CPO's).")] = None,
        since: Annotated[datetime | None, QueryParameter(
            description="Only commands made at or after this time (RFC 3339; without offset: UTC).")] = None,
        kind: Annotated[list[CommandKind] | None, QueryParameter(
            description="Only these kinds (repeat: `kind=set&kind=clear`).")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="At most this many.")] = 200,
        if_none_match: IfNoneMatch = None,
    ) -> Response[bytes]:
        """Every ChargingProfiles request we made, newest first: what was sent, why, and what came back.

        `kind`: set (PUT SetChargingProfile), get (GET ActiveChargingProfile), clear (DELETE).
        `response` is the CPO's synchronous answer, `result` the charge point's answer posted later
        to our response_url; `state` says where the request stands. `ETag` + `If-None-Match`.
        """
        return conditional(commands_log(store, api_key, site=site, session=session, since=since, kind=kind,
                                        limit=limit), if_none_match)
