"""Who an OCPI platform is: its CredentialsRole and the endpoints it serves.

The service (role SCSP) and the CPO simulator (role CPO) are both platforms; the Versions and
Credentials modules and the registration handshake are shared between them.
"""

from __future__ import annotations

import msgspec

from ocpi221.credentials import Credentials, CredentialsRole
from ocpi221.types import OCPI_VERSION, InterfaceRole
from ocpi221.versions import Endpoint, VersionDetails
from scsp.config import join_url


class Platform(msgspec.Struct, frozen=True, kw_only=True):
    """Our identity and module endpoints as an OCPI platform."""

    role: CredentialsRole
    public_url: str
    # (ModuleID, our InterfaceRole, path under /ocpi/2.2.1); only what is really served.
    modules: tuple[tuple[str, InterfaceRole, str], ...]

    @property
    def versions_url(self) -> str:
        """Our version information endpoint."""
        return join_url(self.public_url, "ocpi", "versions")

    @property
    def details_url(self) -> str:
        """Our 2.2.1 version details endpoint."""
        return join_url(self.public_url, "ocpi", OCPI_VERSION)

    def url(self, *path: str) -> str:
        """An absolute URL under our /ocpi/2.2.1 tree."""
        return join_url(self.details_url, *path)

    def version_details(self) -> VersionDetails:
        """Our 2.2.1 version details."""
        return VersionDetails(
            version=OCPI_VERSION,
            endpoints=[Endpoint(identifier=i, role=r, url=self.url(p)) for i, r, p in self.modules],
        )

    def credentials(self, token: str) -> Credentials:
        """Our Credentials object carrying `token` (the token the peer must use to call us)."""
        return Credentials(token=token, url=self.versions_url, roles=[self.role])

    @property
    def country_code(self) -> str:
        """Our country code, upper case."""
        return self.role.country_code.upper()

    @property
    def party_id(self) -> str:
        """Our party id, upper case."""
        return self.role.party_id.upper()
