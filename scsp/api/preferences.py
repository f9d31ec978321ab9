"""Session preferences: `GET/PUT /api/v1/sessions/{country_code}/{party_id}/{session_id}/preferences`.

The body is an OCPI 2.2.1 ChargingPreferences object (mod_sessions.asciidoc), field names verbatim,
so an eMSP can forward what a driver set. Preferences may arrive before the CPO has told us about
the session; the planner picks them up when the session arrives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ocpi221.sessions import ProfileType
from scsp import errors
from scsp.api.auth import ALL_ROLES, ApiController, Forbidden, check_site, problem_responses, require_roles
from scsp.api.common import ApiInput, FieldErrors, utcnow
from scsp.events import SiteEvents
from scsp.records.grid import ApiKey, ApiRole
from scsp.records.sessions import Preferences, site_id
from scsp.store import Store

log = logging.getLogger("scsp.api")

CountryCode = Annotated[
    str,
    PathParameter(
        min_length=2,
        max_length=2,
        pattern=r"^[A-Za-z]{2}$",
        description="The CPO's country code (ISO 3166-1 alpha-2).",
    ),
]
PartyId = Annotated[
    str,
    PathParameter(
        min_length=3, max_length=3, pattern=r"^[A-Za-z0-9]{3}$", description="The CPO's party id (ISO 15118)."
    ),
]
SessionId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=36,
        pattern=r"^[!-~]+$",
        description="The OCPI Session.id, as the CPO sends it.",
    ),
]

# Energy a session may ask for, kWh: above the largest vehicle batteries (trucks, ~1 MWh) with margin.
MAX_ENERGY_KWH = 10_000.0
# A departure time further than this from now (either way) is taken for a client clock or time-zone bug.
DEPARTURE_WINDOW_S = 7 * 86_400

SiteChanged = Callable[[str], None]


class ChargingPreferences(ApiInput, kw_only=True):
    """OCPI 2.2.1 ChargingPreferences (mod_sessions.asciidoc); unknown fields are ignored, as OCPI reads."""

    profile_type: ProfileType
    departure_time: datetime | None = None
    energy_need: Annotated[float, msgspec.Meta(ge=0, le=MAX_ENERGY_KWH, description="kWh")] | None = None
    discharge_allowed: bool | None = None


class SessionPreferences(msgspec.Struct, kw_only=True):
    """A session's stored preferences: the OCPI ChargingPreferences fields plus who set them and when."""

    country_code: str
    party_id: str
    session_id: str
    profile_type: ProfileType
    departure_time: datetime | None
    energy_need: float | None
    discharge_allowed: bool
    # `apikey:<id>` of the key that set them.
    source: str
    updated_at: datetime


def _out(prefs: Preferences) -> SessionPreferences:
    return SessionPreferences(
        country_code=prefs.country_code,
        party_id=prefs.party_id,
        session_id=prefs.session_id,
        profile_type=ProfileType(prefs.profile_type),
        departure_time=prefs.departure,
        energy_need=prefs.energy_kwh,
        discharge_allowed=prefs.discharge_allowed,
        source=prefs.source,
        updated_at=prefs.updated_at,
    )


def session_sites(store: Store, country_code: str, party_id: str, session_id: str) -> list[str]:
    """The sites a session is at as far as we know (none before the CPO told us about it)."""
    return [
        site_id(country_code, party_id, location)
        for location in store.sessions.session_locations(country_code, party_id, session_id)
    ]


def _check_scope(key: ApiKey, sites: list[str], session_id: str) -> None:
    if not key.sites:
        return
    if not sites:
        # The scope cannot be checked for a session nobody told us about: only keys without site
        # limits may set preferences ahead of the session.
        raise Forbidden(
            f"session {session_id!r} is not known yet, and this API key is limited to some sites: "
            "preferences of unknown sessions need a key without site limits"
        )
    for site in sites:
        check_site(key, site)


def get_preferences(
    store: Store, key: ApiKey, country_code: str, party_id: str, session_id: str
) -> SessionPreferences:
    """A session's stored preferences, or `NotFound`."""
    _check_scope(key, session_sites(store, country_code, party_id, session_id), session_id)
    prefs = store.grid.preferences(country_code, party_id, session_id)
    if prefs is None:
        raise errors.NotFound(
            f"no preferences for session {country_code.upper()}/{party_id.upper()}/{session_id}"
        )
    return _out(prefs)


def put_preferences(
    store: Store,
    key: ApiKey,
    country_code: str,
    party_id: str,
    session_id: str,
    body: ChargingPreferences,
    *,
    now: datetime,
    changed: SiteChanged,
) -> SessionPreferences:
    """Validate and store a session's preferences; the session's site is re-planned if we know it."""
    _check_scope(key, session_sites(store, country_code, party_id, session_id), session_id)
    problems = FieldErrors()
    departure = body.departure_time
    if departure is not None and abs((departure - now).total_seconds()) > DEPARTURE_WINDOW_S:
        problems.add("departure_time", f"must be within {DEPARTURE_WINDOW_S // 86_400} days of now")
    if body.energy_need is not None and not math.isfinite(body.energy_need):
        problems.add("energy_need", "must be a finite number")
    problems.raise_any()
    prefs = Preferences(
        country_code=country_code.upper(),
        party_id=party_id.upper(),
        session_id=session_id,
        profile_type=body.profile_type.value,
        departure=departure,
        energy_kwh=body.energy_need,
        discharge_allowed=bool(body.discharge_allowed),
        source=f"apikey:{key.id}",
        updated_at=now,
    )
    store.grid.put_preferences(prefs)
    log.info("preferences changed", extra={"session": session_id, "profile_type": prefs.profile_type,
                                           "departure": prefs.departure.isoformat() if prefs.departure else None,
                                           "energy_kwh": prefs.energy_kwh, "api_key": key.id})
    # Looked up again after the write: a session that arrived meanwhile is re-planned with these preferences.
    for site in session_sites(store, country_code, party_id, session_id):
        changed(site)
    return _out(prefs)


PREFERENCES_READ_DESCRIPTION = """\
The preferences stored for the session (any role): the OCPI ChargingPreferences fields
(`profile_type`, `departure_time`, `energy_need` in kWh, `discharge_allowed`) plus `source` (the API
key that set them) and `updated_at`. 404 when none were set: the configured defaults apply.
"""

PREFERENCES_PUT_DESCRIPTION = f"""\
Replace a session's preferences (roles aggregator, admin). The body is an OCPI 2.2.1
ChargingPreferences object (mod_sessions), names verbatim: `profile_type` (CHEAP, FAST, GREEN,
REGULAR) is required; `departure_time` (within {DEPARTURE_WINDOW_S // 86_400} days of now; no offset
means UTC), `energy_need` (kWh, 0 to {MAX_ENERGY_KWH:g}) and `discharge_allowed` are optional;
unknown fields are ignored. The session need not be known yet: preferences wait for it (only a key
without site limits may set them then, since the site is not known). Once the session is known,
its site is re-planned.
"""


class PreferencesController(ApiController):
    """`/api/v1/sessions/{country_code}/{party_id}/{session_id}/preferences`: a driver's wishes."""

    path = "/api/v1/sessions/{country_code:str}/{party_id:str}/{session_id:str}/preferences"
    tags = ["preferences"]

    @get(
        "/",
        sync_to_thread=True,
        guards=[require_roles(*ALL_ROLES)],
        summary="Read a session's preferences",
        description=PREFERENCES_READ_DESCRIPTION,
        responses=problem_responses(401, 403, 404),
    )
    def read(
        self,
        store: NamedDependency[Store],
        api_key: NamedDependency[ApiKey],
        country_code: CountryCode,
        party_id: PartyId,
        session_id: SessionId,
    ) -> SessionPreferences:
        """The preferences stored for the session (OCPI ChargingPreferences fields plus source and time)."""
        return get_preferences(store, api_key, country_code, party_id, session_id)

    @put(
        "/",
        sync_to_thread=True,
        guards=[require_roles(ApiRole.aggregator, ApiRole.admin)],
        summary="Set a session's preferences",
        description=PREFERENCES_PUT_DESCRIPTION,
        responses=problem_responses(400, 401, 403, 422),
    )
    def replace(
        self,
        store: NamedDependency[Store],
        events: NamedDependency[SiteEvents],
        api_key: NamedDependency[ApiKey],
        country_code: CountryCode,
        party_id: PartyId,
        session_id: SessionId,
        data: JSONBody[ChargingPreferences],
    ) -> SessionPreferences:
        """Replace a session's preferences, in the OCPI ChargingPreferences shape (see the description)."""
        return put_preferences(
            store,
            api_key,
            country_code,
            party_id,
            session_id,
            data,
            now=utcnow(),
            changed=events.site_changed,
        )
