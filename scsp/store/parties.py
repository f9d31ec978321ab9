"""Connected platforms and the tokens we issued them (hashed): the parties aggregate.

The CPO simulator uses this store alone (with `platform_migrations`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlite_utils import Database

from ocpi221.credentials import CredentialsRole
from ocpi221.hubclientinfo import ConnectionStatus
from ocpi221.versions import Endpoint
from scsp.errors import Conflict, InvalidParameters, MethodNotAllowed
from scsp.records.parties import Party, PartyStatus, TokenKind
from scsp.store.codec import moment, unix
from scsp.store.db import Aggregate, Db, hash_token
from scsp.store.migrations import applied, apply, platform_migrations


class PartyStore(Aggregate):
    """Parties (keyed by row id) and the tokens we issued them."""

    @classmethod
    def open(cls, path: Path | str) -> PartyStore:
        """A parties store of its own file (a platform that keeps only its registrations), migrated."""
        store = cls(Db(path))
        apply(store._db, platform_migrations)
        return store

    def applied_migrations(self) -> list[str]:
        """Names of the file's applied migrations, oldest first (readiness)."""
        return applied(self._db)

    @staticmethod
    def _party(row: dict[str, Any]) -> Party:
        return Party(
            id=row["id"],
            role=row["role"],
            country_code=row["country_code"],
            party_id=row["party_id"],
            status=PartyStatus(row["status"]),
            business_name=row["business_name"],
            roles=msgspec.json.decode(row["roles"], type=list[CredentialsRole]),
            versions_url=row["versions_url"],
            version=row["version"],
            version_url=row["version_url"],
            endpoints=msgspec.json.decode(row["endpoints"], type=list[Endpoint]),
            token_out=row["token_out"],
            token_base64=bool(row["token_base64"]),
            connection_status=ConnectionStatus(row["connection_status"]),
            identities=msgspec.json.decode(row["identities"], type=list[str]),
            created_at=moment(row["created_at"]),
            updated_at=moment(row["updated_at"]),
        )

    def _get_party(self, db: Database, party: int) -> Party:
        rows = list(db.query("SELECT * FROM parties WHERE id = ?", [party]))
        if not rows:
            raise LookupError(f"no party with id {party}")
        return self._party(rows[0])

    def get(self, party: int) -> Party:
        """One party by its row id."""
        with self._read() as db:
            return self._get_party(db, party)

    def all(self, *, include_unregistered: bool = True) -> list[Party]:
        """All parties, oldest first."""
        sql = "SELECT * FROM parties"
        if not include_unregistered:
            sql += " WHERE status != 'UNREGISTERED'"
        with self._read() as db:
            return [self._party(r) for r in db.query(sql + " ORDER BY id")]

    def registered(self, country_code: str, party_id: str) -> Party | None:
        """The registered party that has (country_code, party_id) among its roles, if any."""
        for party in self.all(include_unregistered=False):
            if party.status == PartyStatus.REGISTERED and party.owns(country_code, party_id):
                return party
        return None

    def by_token(self, token: str) -> tuple[Party, TokenKind] | None:
        """The party holding this (not revoked) token we issued, and the token's kind."""
        with self._read() as db:
            rows = list(
                db.query(
                    "SELECT party, kind FROM tokens WHERE hash = ? AND revoked_at IS NULL",
                    [hash_token(token)],
                )
            )
            if not rows:
                return None
            return self._get_party(db, rows[0]["party"]), TokenKind(rows[0]["kind"])

    def create(
        self,
        *,
        status: PartyStatus,
        role: str,
        country_code: str,
        party_id: str,
        token: str,
        token_kind: TokenKind,
        now: datetime,
        versions_url: str | None = None,
        token_out: str | None = None,
        token_base64: bool = True,
        also: list[str] | None = None,
    ) -> Party:
        """Insert a party with the token we issued it (an invitation or a pending registration).

        `also`: identities (`CC-PID`) the invited peer may hold besides its own; none may be held by
        another connection (Conflict).
        """
        with self._write() as db:
            extra = [h.upper() for h in also or []]
            for handle in extra:
                holder = self._holder(db, handle, excluding=None)
                if holder is not None:
                    raise Conflict(f"{handle} is held by another connection ({holder.handle}, id {holder.id})")
            cursor = db.execute(
                """INSERT INTO parties (role, country_code, party_id, status, versions_url, token_out,
                   token_base64, identities, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [role, country_code.upper(), party_id.upper(), status, versions_url, token_out,
                 int(token_base64), msgspec.json.encode(extra).decode(), unix(now), unix(now)],
            )
            party = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, ?, ?)",
                [hash_token(token), party, token_kind, unix(now)],
            )
            return self._get_party(db, party)

    def delete_pending(self, party: int) -> None:
        """Remove a party that never completed registration, with its tokens."""
        with self._write() as db:
            db.execute("DELETE FROM tokens WHERE party = ?", [party])
            db.execute("DELETE FROM parties WHERE id = ? AND status IN ('PENDING', 'INVITED')", [party])

    def complete_registration(
        self,
        party: int,
        *,
        roles: list[CredentialsRole],
        identity: CredentialsRole,
        versions_url: str,
        version: str,
        version_url: str,
        endpoints: list[Endpoint],
        token_out: str,
        token_base64: bool,
        new_token: str | None,
        now: datetime,
    ) -> Party:
        """Mark a party registered, in one transaction.

        Revokes every token A of the party (single use: credentials.asciidoc "it MAY no longer be
        used"), stores the new token C when we issued one, and retires any older registration of the
        same identity (a re-registration after the peer lost its state).
        """
        with self._write() as db:
            current = self._get_party(db, party)
            if current.status not in (PartyStatus.INVITED, PartyStatus.PENDING):
                # A concurrent registration with the same token A won the race.
                raise MethodNotAllowed(f"party {current.handle} is already registered")
            cc, pid = identity.country_code.upper(), identity.party_id.upper()
            for old in db.query(
                "SELECT id FROM parties WHERE country_code = ? AND party_id = ? AND role = ? "
                "AND status = 'REGISTERED' AND id != ?",
                [cc, pid, identity.role, party],
            ):
                db.execute("UPDATE parties SET status = 'UNREGISTERED', updated_at = ? WHERE id = ?",
                           [unix(now), old["id"]])
                db.execute("UPDATE tokens SET revoked_at = ? WHERE party = ? AND revoked_at IS NULL",
                           [unix(now), old["id"]])
            # An invited peer may hold what it was invited with; a peer we registered with (the
            # operator asked for it) holds every role it named that no other connection holds.
            granted = self._granted(db, current, roles, primary=f"{cc}-{pid}",
                                    strict=current.status == PartyStatus.INVITED)
            db.execute(
                """UPDATE parties SET status = 'REGISTERED', role = ?, country_code = ?, party_id = ?,
                   business_name = ?, roles = ?, versions_url = ?, version = ?, version_url = ?,
                   endpoints = ?, token_out = ?, token_base64 = ?, identities = ?, updated_at = ? WHERE id = ?""",
                [identity.role, cc, pid, identity.business_details.name,
                 msgspec.json.encode(roles).decode(), versions_url, version, version_url,
                 msgspec.json.encode(endpoints).decode(), token_out, int(token_base64),
                 msgspec.json.encode(granted).decode(), unix(now), party],
            )
            db.execute("UPDATE tokens SET revoked_at = ? WHERE party = ? AND kind = 'A' AND revoked_at IS NULL",
                       [unix(now), party])
            if new_token is not None:
                db.execute(
                    "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, 'C', ?)",
                    [hash_token(new_token), party, unix(now)],
                )
            return self._get_party(db, party)

    def update_credentials(
        self,
        party: int,
        *,
        roles: list[CredentialsRole] | None = None,
        versions_url: str | None = None,
        version: str | None = None,
        version_url: str | None = None,
        endpoints: list[Endpoint] | None = None,
        token_out: str | None = None,
        token_base64: bool | None = None,
        new_token: str | None = None,
        keep_token: str | None = None,
        check_roles: bool = False,
        now: datetime,
    ) -> Party:
        """Apply a credentials update in one transaction.

        With `new_token` (we issue it now) or `keep_token` (we issued it just before the update), every
        other token of the party is revoked: after a rotation only the newest token works. With
        `check_roles` (the peer's own PUT) every role must be an identity the party holds
        (`check_roles`); the roles never add one.
        """
        with self._write() as db:
            current = self._get_party(db, party)
            if current.status != PartyStatus.REGISTERED:
                raise MethodNotAllowed(f"party {current.handle} is not registered")
            if check_roles and roles is not None:
                self._granted(db, current, roles, primary=current.handle, strict=True)
            db.execute(
                """UPDATE parties SET roles = ?, business_name = ?, versions_url = ?, version = ?,
                   version_url = ?, endpoints = ?, token_out = ?, token_base64 = ?, updated_at = ?
                   WHERE id = ?""",
                [
                    msgspec.json.encode(roles if roles is not None else current.roles).decode(),
                    _business_name(roles, current),
                    versions_url or current.versions_url,
                    version or current.version,
                    version_url or current.version_url,
                    msgspec.json.encode(endpoints if endpoints is not None else current.endpoints).decode(),
                    token_out if token_out is not None else current.token_out,
                    int(token_base64 if token_base64 is not None else current.token_base64),
                    unix(now),
                    party,
                ],
            )
            if new_token is not None:
                db.execute(
                    "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, 'C', ?)",
                    [hash_token(new_token), party, unix(now)],
                )
            survivor = new_token if new_token is not None else keep_token
            if survivor is not None:
                db.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE party = ? AND revoked_at IS NULL AND hash != ?",
                    [unix(now), party, hash_token(survivor)],
                )
            return self._get_party(db, party)

    @staticmethod
    def _holder(db: Database, handle: str, *, excluding: int | None) -> Party | None:
        """The live connection (not unregistered) that holds the identity `handle`, other than `excluding`."""
        for row in db.query("SELECT * FROM parties WHERE status != 'UNREGISTERED' ORDER BY id"):
            if row["id"] == excluding:
                continue
            party = PartyStore._party(row)
            if party.owns(*handle.split("-", 1)):
                return party
        return None

    def _granted(self, db: Database, current: Party, roles: list[CredentialsRole], *, primary: str,
                 strict: bool) -> list[str]:
        """The identities `current` holds once its credentials name `roles`.

        Strict (a peer's own POST or PUT): every role must already be granted to it, else 2001 naming
        the role: held by another connection, or new (the operator adds it: `scsp parties allow`).
        Otherwise (we registered with the peer at the operator's request): roles no other connection
        holds are granted, the others are not.
        """
        granted: list[str] = []
        for role in roles:
            handle = f"{role.country_code.upper()}-{role.party_id.upper()}"
            if handle == primary or handle in granted:
                continue
            holder = self._holder(db, handle, excluding=current.id)
            if strict and holder is not None:
                # credentials.asciidoc: the roles tell us "the party_id and country_code sets a client
                # will use when pushing Client Owned Objects"; they inform, they do not take over.
                raise InvalidParameters(
                    f"roles: {handle} is held by another connection; a credentials update cannot take "
                    "another party's identity")
            if strict and handle not in current.identities:
                raise InvalidParameters(
                    f"roles: {handle} is not an identity this connection was invited or registered with; "
                    f"the operator adds it with `scsp parties allow {current.handle} {handle}`")
            if holder is None:
                granted.append(handle)
        return granted

    def check_roles(self, party: int, roles: list[CredentialsRole], *, primary: str | None = None) -> None:
        """Raise InvalidParameters (2001) unless every role is an identity the party holds (see `_granted`)."""
        with self._read() as db:
            current = self._get_party(db, party)
            self._granted(db, current, roles, primary=(primary or current.handle).upper(), strict=True)

    def allow(self, party: int, handle: str, *, now: datetime) -> Party:
        """The operator lets a connection hold one more identity (`CC-PID`); Conflict if another holds it."""
        handle = handle.upper()
        with self._write() as db:
            current = self._get_party(db, party)
            if current.status == PartyStatus.UNREGISTERED:
                raise MethodNotAllowed(f"{current.handle} is unregistered")
            holder = self._holder(db, handle, excluding=party)
            if holder is not None:
                raise Conflict(f"{handle} is held by another connection ({holder.handle}, id {holder.id}): "
                               "unregister it or take the identity from it first (`scsp parties deny`)")
            if not current.owns(*handle.split("-", 1)):
                db.execute("UPDATE parties SET identities = ?, updated_at = ? WHERE id = ?",
                           [msgspec.json.encode([*current.identities, handle]).decode(), unix(now), party])
            return self._get_party(db, party)

    def deny(self, party: int, handle: str, *, now: datetime) -> Party:
        """The operator takes an identity from a connection (never its own primary identity)."""
        handle = handle.upper()
        with self._write() as db:
            current = self._get_party(db, party)
            if handle == current.handle.upper():
                raise Conflict(f"{handle} is the connection's own identity: unregister it instead")
            db.execute("UPDATE parties SET identities = ?, updated_at = ? WHERE id = ?",
                       [msgspec.json.encode([h for h in current.identities if h != handle]).decode(), unix(now),
                        party])
            return self._get_party(db, party)

    def add_token(self, party: int, token: str, *, now: datetime) -> None:
        """Issue one more token C to a party (before a rotation whose outcome is not known yet)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, 'C', ?)",
                [hash_token(token), party, unix(now)],
            )

    def revoke_token(self, token: str, *, now: datetime) -> None:
        """Revoke one token we issued."""
        with self._write() as db:
            db.execute("UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                       [unix(now), hash_token(token)])

    def unregister(self, party: int, *, now: datetime) -> Party:
        """Mark a party unregistered and revoke every token we issued it: all traffic stops."""
        with self._write() as db:
            db.execute("UPDATE parties SET status = 'UNREGISTERED', updated_at = ? WHERE id = ?", [unix(now), party])
            db.execute("UPDATE tokens SET revoked_at = ? WHERE party = ? AND revoked_at IS NULL", [unix(now), party])
            return self._get_party(db, party)

    def set_connection_status(self, party: int, status: ConnectionStatus, *, now: datetime) -> Party:
        """Record what a Hub reported about a party (HubClientInfo)."""
        with self._write() as db:
            db.execute("UPDATE parties SET connection_status = ?, updated_at = ? WHERE id = ?",
                       [status, unix(now), party])
            return self._get_party(db, party)


    def predecessors(self, party: int) -> list[int]:
        """Earlier registrations (now unregistered) of the identity this party is registered as."""
        with self._read() as db:
            current = self._get_party(db, party)
            return [r["id"] for r in db.query(
                "SELECT id FROM parties WHERE country_code = ? AND party_id = ? AND role = ? "
                "AND status = 'UNREGISTERED' AND id != ? ORDER BY id",
                [current.country_code, current.party_id, current.role, party])]

def _business_name(roles: list[CredentialsRole] | None, current: Party) -> str | None:
    if not roles:
        return current.business_name
    for role in roles:
        if (role.country_code.upper(), role.party_id.upper()) == (current.country_code, current.party_id):
            return role.business_details.name
    return roles[0].business_details.name
