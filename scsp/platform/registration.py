"""The credentials handshake (credentials.asciidoc), as server and as client.

Server side: POST registers (token A -> we fetch the client's versions with its token B -> we issue
token C), GET returns our credentials, PUT updates (re-fetch endpoints, new token), DELETE
unregisters. Client side: we register with a peer given its versions URL and token A, rotate, and
unregister.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime

from ocpi221.credentials import Credentials, CredentialsRole
from ocpi221.types import OCPI_VERSION, Role
from ocpi221.versions import Version, VersionDetails
from scsp import errors
from scsp.platform.client import OcpiClient
from scsp.platform.identity import Platform
from scsp.platform.transport import Caller
from scsp.records.parties import Party, PartyStatus, TokenKind
from scsp.store.parties import PartyStore

log = logging.getLogger("scsp.registration")

# Endpoints a peer must offer before we register with it or accept its registration (3003 otherwise).
REQUIRED_MODULES: dict[str, frozenset[str]] = {
    Role.CPO: frozenset({"credentials"}),
    Role.HUB: frozenset({"credentials"}),
}
DEFAULT_REQUIRED = frozenset({"credentials"})


def new_token() -> str:
    """A fresh credentials token: 43 URL-safe characters (256 bits), within string(64) printable ASCII."""
    return secrets.token_urlsafe(32)


async def fetch_version(
    client: OcpiClient, versions_url: str, token: str, *, prefer_base64: bool,
    required: Iterable[str] = DEFAULT_REQUIRED,
) -> tuple[Version, VersionDetails, bool]:
    """GET a peer's versions and 2.2.1 details; returns them and whether Base64 worked.

    The Authorization form is detected here (ocpi-notes §1.1): the preferred form first, the other
    after a 401. Raises ClientApiUnusable (3001), UnsupportedVersion (3002), NoMatchingEndpoints (3003).
    """
    use_base64 = prefer_base64
    try:
        versions, _ = await client.request("GET", versions_url, token=token, use_base64=use_base64,
                                           data_type=list[Version])
    except errors.PeerError as first:
        if first.http_status != 401:
            raise errors.ClientApiUnusable(f"could not get the versions: {first.summary('GET', versions_url)}") \
                from None
        use_base64 = not use_base64
        try:
            versions, _ = await client.request("GET", versions_url, token=token, use_base64=use_base64,
                                               data_type=list[Version])
        except errors.PeerError as second:
            raise errors.ClientApiUnusable(
                f"could not get the versions: {second.summary('GET', versions_url)}") from None
    chosen = next((v for v in versions or [] if v.version == OCPI_VERSION), None)
    if chosen is None:
        offered = ", ".join(v.version for v in versions or []) or "none"
        raise errors.UnsupportedVersion(f"no mutual OCPI version: we speak {OCPI_VERSION}, peer offers {offered}")
    try:
        details, _ = await client.request("GET", chosen.url, token=token, use_base64=use_base64,
                                          data_type=VersionDetails)
    except errors.PeerError as exc:
        raise errors.ClientApiUnusable(
            f"could not get the {OCPI_VERSION} version details: {exc.summary('GET', chosen.url)}") from None
    if details is None:
        raise errors.ClientApiUnusable(f"the {OCPI_VERSION} version details reply carries no data")
    missing = sorted(set(required) - {e.identifier for e in details.endpoints})
    if missing:
        raise errors.NoMatchingEndpoints(f"required endpoints missing: {', '.join(missing)}")
    return chosen, details, use_base64


def _required_for(roles: Iterable[CredentialsRole]) -> frozenset[str]:
    out: set[str] = set(DEFAULT_REQUIRED)
    for role in roles:
        out |= REQUIRED_MODULES.get(role.role, DEFAULT_REQUIRED)
    return frozenset(out)


# -- server side ---------------------------------------------------------------------------------

async def accept_registration(parties: PartyStore, client: OcpiClient, me: Platform, caller: Caller,
                              credentials: Credentials, *, now: datetime) -> Credentials:
    """Credentials POST: register the caller (holding token A) and return our Credentials with token C."""
    party = caller.party
    if caller.kind != TokenKind.A or party.status != PartyStatus.INVITED:
        # credentials.asciidoc: "MUST return a HTTP status code 405 … if the client has already been registered"
        raise errors.MethodNotAllowed("already registered: use PUT to update or DELETE to unregister")
    identity = next(
        (r for r in credentials.roles
         if (r.country_code.upper(), r.party_id.upper()) == (party.country_code, party.party_id)), None)
    if identity is None:
        raise errors.InvalidParameters(
            f"roles: the invitation was issued to {party.handle}, which is not among the roles offered")
    if identity.role != party.role:
        raise errors.InvalidParameters(
            f"roles: the invitation was issued to {party.handle} as {party.role}, not {identity.role}")
    # Every other role must be an identity the invitation carried; one another connection holds, or
    # one nobody granted, is refused before we call the peer (2001: a parameter of the request is
    # unacceptable; 3001 is for trouble reaching the client's API, credentials.asciidoc "Errors
    # during registration").
    await asyncio.to_thread(parties.check_roles, party.id, credentials.roles)
    version, details, use_base64 = await fetch_version(
        client, credentials.url, credentials.token, prefer_base64=caller.base64,
        required=_required_for(credentials.roles))
    token_c = new_token()
    # A blocking SQLite write (it may wait BUSY_TIMEOUT_S for the lock): never on the event loop.
    registered = await asyncio.to_thread(
        parties.complete_registration,
        party.id, roles=credentials.roles, identity=identity, versions_url=credentials.url,
        version=version.version, version_url=version.url, endpoints=details.endpoints,
        token_out=credentials.token, token_base64=use_base64, new_token=token_c, now=now)
    log.info("party registered with us", extra={"party": registered.handle, "role": registered.role})
    return me.credentials(token_c)


async def accept_update(parties: PartyStore, client: OcpiClient, me: Platform, caller: Caller,
                        credentials: Credentials, *, now: datetime) -> Credentials:
    """Credentials PUT: re-fetch the client's endpoints, store its new token, issue ours anew."""
    party = caller.party
    if caller.kind != TokenKind.C or party.status != PartyStatus.REGISTERED:
        # credentials.asciidoc: "MUST return a HTTP status code 405 … if the client has not been registered yet"
        raise errors.MethodNotAllowed("not registered: use POST to register")
    if not any(r.country_code.upper() == party.country_code and r.party_id.upper() == party.party_id
               for r in credentials.roles):
        raise errors.InvalidParameters(f"roles: must still include {party.handle}")
    # The roles may not add an identity: one another connection holds would let this peer push its
    # Locations and Sessions (and be planned inside its sites); a new one needs the operator.
    await asyncio.to_thread(parties.check_roles, party.id, credentials.roles)
    # "even if the version has not changed" the endpoints are fetched again.
    version, details, use_base64 = await fetch_version(
        client, credentials.url, credentials.token, prefer_base64=caller.base64,
        required=_required_for(credentials.roles))
    token_c = new_token()
    updated = await asyncio.to_thread(
        parties.update_credentials,
        party.id, roles=credentials.roles, versions_url=credentials.url, version=version.version,
        version_url=version.url, endpoints=details.endpoints, token_out=credentials.token,
        token_base64=use_base64, new_token=token_c, check_roles=True, now=now)
    log.info("party updated its credentials", extra={"party": updated.handle})
    return me.credentials(token_c)


def accept_unregister(parties: PartyStore, caller: Caller, *, now: datetime) -> None:
    """Credentials DELETE: unregister; every token we issued the party stops working."""
    party = caller.party
    if caller.kind != TokenKind.C or party.status != PartyStatus.REGISTERED:
        raise errors.MethodNotAllowed("not registered")
    parties.unregister(party.id, now=now)
    log.info("party unregistered itself", extra={"party": party.handle})


# -- client side ---------------------------------------------------------------------------------

async def register_with(parties: PartyStore, client: OcpiClient, me: Platform, versions_url: str, token_a: str,
                        *, now: datetime) -> Party:
    """Register with a peer given its versions URL and token A; returns the registered party.

    Token B (the peer's token for calling us) is stored before the POST, because the peer calls our
    versions endpoint with it while it handles the POST. Once the peer has answered the POST it has
    registered us and holds token B, so from then on the party stays registered: a failure to fetch
    the versions URL its Credentials name is logged as a warning and the endpoints we already have
    are kept.
    """
    version, details, use_base64 = await fetch_version(client, versions_url, token_a, prefer_base64=True)
    credentials_url = next((e.url for e in details.endpoints if e.identifier == "credentials"), None)
    assert credentials_url is not None  # fetch_version required it
    token_b = new_token()
    pending = await asyncio.to_thread(
        parties.create,
        status=PartyStatus.PENDING, role="?", country_code="??", party_id="???", token=token_b,
        token_kind=TokenKind.C, now=now, versions_url=versions_url, token_out=token_a,
        token_base64=use_base64)
    try:
        theirs, _ = await client.request("POST", credentials_url, token=token_a, use_base64=use_base64,
                                         data_type=Credentials, body=me.credentials(token_b))
        if theirs is None:
            raise errors.PeerError("credentials POST returned no Credentials object")
    except BaseException:
        await asyncio.to_thread(parties.delete_pending, pending.id)
        raise
    # The peer has registered us: token A is spent and token B is live on its side, so the party is
    # not deleted whatever fails from here on.
    party = await asyncio.to_thread(
        parties.complete_registration,
        pending.id, roles=theirs.roles, identity=_primary_role(theirs.roles), versions_url=versions_url,
        version=version.version, version_url=version.url, endpoints=details.endpoints,
        token_out=theirs.token, token_base64=use_base64, new_token=None, now=now)
    log.info("registered with a peer", extra={"party": party.handle, "role": party.role})
    if theirs.url.rstrip("/") != versions_url.rstrip("/"):
        party = await _refresh_endpoints(parties, client, party, theirs.url, theirs.token, now=now)
    return party


async def rotate(parties: PartyStore, client: OcpiClient, me: Platform, party: Party, *, now: datetime) -> Party:
    """Credentials PUT to the peer: a new token for it to call us, a new token for us from it.

    Once the peer has answered the PUT, its new token, its roles and ours are stored together; the
    endpoints are re-fetched after that, and a failure there is a warning that keeps the old ones.

    Raises:
        MethodNotAllowed: the party is not REGISTERED (nothing to rotate; no token issued, no call made).
        PeerError: the PUT failed; the token issued for it is revoked again.
    """
    if party.status != PartyStatus.REGISTERED:
        raise errors.MethodNotAllowed(f"{party.handle} is {party.status}: only a registered party can rotate")
    url = _credentials_url(party)
    token = new_token()
    await asyncio.to_thread(parties.add_token, party.id, token, now=now)
    try:
        theirs, _ = await client.call(party, "PUT", url, data_type=Credentials, body=me.credentials(token))
        if theirs is None:
            raise errors.PeerError("credentials PUT returned no Credentials object")
    except BaseException:
        await asyncio.to_thread(parties.revoke_token, token, now=now)
        raise
    # The peer now holds our new token and has given us its own: keep both, or both directions break.
    updated = await asyncio.to_thread(
        parties.update_credentials, party.id, roles=theirs.roles, token_out=theirs.token, keep_token=token,
        now=now)
    log.info("rotated credentials", extra={"party": updated.handle})
    return await _refresh_endpoints(parties, client, updated, theirs.url, theirs.token, now=now)


async def _refresh_endpoints(parties: PartyStore, client: OcpiClient, party: Party, versions_url: str, token: str,
                             *, now: datetime) -> Party:
    """Fetch a registered peer's endpoints anew and store them; on failure warn and keep the old ones."""
    try:
        version, details, use_base64 = await fetch_version(client, versions_url, token,
                                                           prefer_base64=party.token_base64)
    except (errors.OcpiError, errors.PeerError) as exc:
        # The messages carry URLs and statuses, never a token (cpo_client builds them so).
        log.warning("%s: could not fetch the endpoints from %s (%s); keeping those from %s",
                    party.handle, versions_url, exc.message, party.versions_url,
                    extra={"party": party.handle})
        return party
    return await asyncio.to_thread(
        parties.update_credentials, party.id, versions_url=versions_url, version=version.version,
        version_url=version.url, endpoints=details.endpoints, token_base64=use_base64, now=now)


async def unregister(parties: PartyStore, client: OcpiClient, party: Party, *, now: datetime
                     ) -> tuple[Party, str | None]:
    """Credentials DELETE to the peer, then stop all traffic locally whatever it answered.

    Returns the party and the peer's error message, if its DELETE failed.
    """
    problem: str | None = None
    if party.status == PartyStatus.REGISTERED:
        try:
            await client.call(party, "DELETE", _credentials_url(party))
        except errors.PeerError as exc:
            problem = exc.message
    updated = await asyncio.to_thread(parties.unregister, party.id, now=now)
    log.info("unregistered a peer", extra={"party": party.handle, "remote_ok": problem is None})
    return updated, problem


def _credentials_url(party: Party) -> str:
    url = party.endpoint("credentials")
    if url is None:
        raise errors.PeerError(f"{party.handle} advertises no credentials endpoint")
    return url


def _primary_role(roles: list[CredentialsRole]) -> CredentialsRole:
    """The role we key a peer by: CPO first (it is whom we send profiles), then HUB, then the first."""
    for wanted in (Role.CPO, Role.HUB):
        for role in roles:
            if role.role == wanted:
                return role
    return roles[0]
