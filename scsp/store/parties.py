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
from scsp.errors import MethodNotAllowed
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
    ) -> Party:
        """Insert a party with the token we issued it (an invitation or a pending registration)."""
        with self._write() as db:
            cursor = db.execute(
                """INSERT INTO parties (role, country_code, party_id, status, versions_url, token_out,
                   token_base64, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [role, country_code.upper(), party_id.upper(), status, versions_url, token_out,
                 int(token_base64), unix(now), unix(now)],
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
            db.execute(
                """UPDATE parties SET status = 'REGISTERED', role = ?, country_code = ?, party_id = ?,
                   business_name = ?, roles = ?, versions_url = ?, version = ?, version_url = ?,
                   endpoints = ?, token_out = ?, token_base64 = ?, updated_at = ? WHERE id = ?""",
                [identity.role, cc, pid, identity.business_details.name,
                 msgspec.json.encode(roles).decode(), versions_url, version, version_url,
                 msgspec.json.encode(endpoints).decode(), token_out, int(token_base64), unix(now), party],
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
        now: datetime,
    ) -> Party:
        """Apply a credentials update in one transaction.

        With `new_token` (we issue it now) or `keep_token` (we issued it just before the update), every
        other token of the party is revoked: after a rotation only the newest token works.
        """
        with self._write() as db:
            current = self._get_party(db, party)
            if current.status != PartyStatus.REGISTERED:
                raise MethodNotAllowed(f"party {current.handle} is not registered")
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
