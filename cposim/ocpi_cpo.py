"""The simulated CPO's OCPI 2.2.1 modules: Locations Sender, Sessions Sender, ChargingProfiles Receiver.

Each controller decodes, calls one `SimulatedCpo` method and wraps the envelope. Bad input gets an
OCPI error envelope (2001), never a 5xx; the shared exception handler does the wrapping.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote_plus

from litestar import Controller, Request, delete, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Response

from cposim.runtime import SimulatedCpo
from ocpi221.chargingprofiles import ChargingProfile, SetChargingProfile
from ocpi221.types import OcpiResponse
from scsp import errors
from scsp.platform.identity import Platform
from scsp.platform.transport import Caller, ok, page_headers, page_request

Id36 = Annotated[str, PathParameter(min_length=1, max_length=36)]
Offset = Annotated[int | None, QueryParameter(description="offset of the first object returned (default 0)")]
Limit = Annotated[int | None, QueryParameter(description="most objects to return (capped at X-Limit)")]
DateFrom = Annotated[datetime | None, QueryParameter(description="last_updated >= date_from (inclusive)")]
DateTo = Annotated[datetime | None, QueryParameter(description="last_updated < date_to (exclusive)")]


class LocationsController(Controller):
    """`/ocpi/2.2.1/locations`: the Locations Sender interface (mod_locations.asciidoc)."""

    path = "/ocpi/2.2.1/locations"

    @get("/", sync_to_thread=True)
    def list_locations(
        self,
        sim: NamedDependency[SimulatedCpo],
        platform: NamedDependency[Platform],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        offset: Offset = None,
        limit: Limit = None,
    ) -> Response[OcpiResponse[Any]]:
        """Locations with `last_updated` in [date_from, date_to), paginated (Link, X-Total-Count, X-Limit)."""
        page = page_request(offset, limit, date_from, date_to, max_limit=sim.settings.page_limit)
        items, total = sim.locations_page(page)
        return Response(
            ok(items),
            headers=page_headers(platform.url("locations"), page, total, len(items), sim.settings.page_limit),
        )

    @get("/{location_id:str}", sync_to_thread=True)
    def get_location(self, sim: NamedDependency[SimulatedCpo], location_id: Id36) -> OcpiResponse[Any]:
        """One Location."""
        return ok(sim.location(location_id))

    @get("/{location_id:str}/{evse_uid:str}", sync_to_thread=True)
    def get_evse(
        self, sim: NamedDependency[SimulatedCpo], location_id: Id36, evse_uid: Id36
    ) -> OcpiResponse[Any]:
        """One EVSE."""
        return ok(sim.evse(location_id, evse_uid))

    @get("/{location_id:str}/{evse_uid:str}/{connector_id:str}", sync_to_thread=True)
    def get_connector(
        self, sim: NamedDependency[SimulatedCpo], location_id: Id36, evse_uid: Id36, connector_id: Id36
    ) -> OcpiResponse[Any]:
        """One Connector."""
        return ok(sim.connector(location_id, evse_uid, connector_id))


class SessionsController(Controller):
    """`/ocpi/2.2.1/sessions`: the Sessions Sender interface (mod_sessions.asciidoc), GET list only."""

    path = "/ocpi/2.2.1/sessions"

    @get("/", sync_to_thread=True)
    def list_sessions(
        self,
        sim: NamedDependency[SimulatedCpo],
        platform: NamedDependency[Platform],
        date_from: DateFrom = None,
        date_to: DateTo = None,
        offset: Offset = None,
        limit: Limit = None,
    ) -> Response[OcpiResponse[Any]]:
        """Sessions with `last_updated` in [date_from, date_to), oldest first, paginated.

        mod_sessions marks `date_from` required; a request without it still gets every session
        (tolerant: the generic pagination rules make it optional).
        """
        page = page_request(offset, limit, date_from, date_to, max_limit=sim.settings.page_limit)
        items, total = sim.sessions_page(page)
        return Response(
            ok(items),
            headers=page_headers(platform.url("sessions"), page, total, len(items), sim.settings.page_limit),
        )


def response_url_from_query(raw_query: str, parsed: str | None) -> str | None:
    """The `response_url` query parameter, tolerant of both encodings (ocpi-notes §10.4).

    The spec's examples put the URL in unencoded (`...&response_url=https://x/cb?id=1`); a careful
    Sender percent-encodes it. Unencoded, an `&` inside the URL would split it, so everything after
    `response_url=` is taken up to the next `duration=` parameter, and decoded only when encoded.
    """
    for prefix in ("response_url=", "&response_url="):
        at = raw_query.find(prefix)
        if at == 0 or (at > 0 and prefix.startswith("&")):
            value = raw_query[at + len(prefix) :]
            cut = value.find("&duration=")
            value = value if cut < 0 else value[:cut]
            if value.lower().startswith(("http%3a", "https%3a")):
                value = unquote_plus(value)
            return value or None
    return parsed or None


def _check_url(url: str | None) -> str:
    if not url:
        raise errors.InvalidParameters("response_url: required")
    if not url.startswith(("http://", "https://")) or len(url) > 255:
        raise errors.InvalidParameters("response_url: must be an http(s) URL of at most 255 characters")
    return url


# Longest time span we accept in a profile or a GET (seconds, ~31 years): beyond it datetimes overflow.
MAX_SPAN_S = 1_000_000_000
# Longest ActiveChargingProfile we compute for a GET (seconds): a longer `duration` is shortened
# (a charge point reports what it has planned, and nobody plans a week ahead).
MAX_ACTIVE_DURATION_S = 7 * 86_400


def _check_profile(profile: ChargingProfile) -> None:
    """Refuse profiles no charge point could apply (2001), beyond what the decoder checks."""
    if profile.duration is not None and not 0 <= profile.duration <= MAX_SPAN_S:
        raise errors.InvalidParameters(f"charging_profile.duration: must be in [0, {MAX_SPAN_S}]")
    if profile.start_date_time is not None and profile.start_date_time.year > 9000:
        raise errors.InvalidParameters("charging_profile.start_date_time: out of range")
    if profile.min_charging_rate is not None and not (
        math.isfinite(profile.min_charging_rate) and profile.min_charging_rate >= 0
    ):
        raise errors.InvalidParameters("charging_profile.min_charging_rate: must be a number >= 0")
    for index, period in enumerate(profile.charging_profile_period):
        if not 0 <= period.start_period <= MAX_SPAN_S:
            raise errors.InvalidParameters(
                f"charging_profile.charging_profile_period[{index}].start_period: out of [0, {MAX_SPAN_S}]"
            )
        if not (math.isfinite(period.limit) and period.limit >= 0):
            raise errors.InvalidParameters(
                f"charging_profile.charging_profile_period[{index}].limit: must be a number >= 0"
            )


class ChargingProfilesController(Controller):
    """`/ocpi/2.2.1/chargingprofiles/{session_id}`: the Receiver interface (mod_charging_profiles.asciidoc).

    Every answer is the synchronous ChargingProfileResponse; the charge point's result is POSTed to
    `response_url` later (unless the answer is not ACCEPTED).
    """

    path = "/ocpi/2.2.1/chargingprofiles"

    @put("/{session_id:str}", sync_to_thread=True)
    def set_profile(
        self,
        sim: NamedDependency[SimulatedCpo],
        caller: NamedDependency[Caller],
        session_id: Id36,
        data: JSONBody[SetChargingProfile],
    ) -> OcpiResponse[Any]:
        """Set (or replace) the session's ChargingProfile."""
        _check_profile(data.charging_profile)
        response_url = _check_url(data.response_url)
        return ok(
            sim.charging_profile_request(
                "PUT", session_id, caller.party, response_url, profile=data.charging_profile
            )
        )

    @get("/{session_id:str}", sync_to_thread=True)
    def get_active_profile(
        self,
        request: Request[Any, Any, Any],
        sim: NamedDependency[SimulatedCpo],
        caller: NamedDependency[Caller],
        session_id: Id36,
        duration: Annotated[
            int | None, QueryParameter(description="length of the ActiveChargingProfile, s")
        ] = None,
        response_url: Annotated[str | None, QueryParameter(description="where the result is POSTed")] = None,
    ) -> OcpiResponse[Any]:
        """Ask for the ActiveChargingProfile; it is POSTed to `response_url` (ActiveChargingProfileResult)."""
        if duration is None or duration <= 0:
            raise errors.InvalidParameters("duration: required, a positive number of seconds")
        duration = min(duration, MAX_ACTIVE_DURATION_S)
        url = _check_url(
            response_url_from_query(request.scope.get("query_string", b"").decode("latin-1"), response_url)
        )
        return ok(sim.charging_profile_request("GET", session_id, caller.party, url, duration=duration))

    @delete("/{session_id:str}", sync_to_thread=True, status_code=200)
    def clear_profile(
        self,
        request: Request[Any, Any, Any],
        sim: NamedDependency[SimulatedCpo],
        caller: NamedDependency[Caller],
        session_id: Id36,
        response_url: Annotated[str | None, QueryParameter(description="where the result is POSTed")] = None,
    ) -> OcpiResponse[Any]:
        """Clear the profile set on the session; a ClearProfileResult is POSTed to `response_url`."""
        url = _check_url(
            response_url_from_query(request.scope.get("query_string", b"").decode("latin-1"), response_url)
        )
        return ok(sim.charging_profile_request("DELETE", session_id, caller.party, url))
