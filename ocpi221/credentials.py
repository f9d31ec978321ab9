"""Credentials module (credentials.asciidoc)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ocpi221.types import BusinessDetails, CiString2, CiString3, CredentialsToken, OcpiObject, Role, Url


class CredentialsRole(OcpiObject, kw_only=True):
    """credentials.asciidoc "CredentialsRole"."""

    role: Role
    business_details: BusinessDetails
    party_id: CiString3
    country_code: CiString2


class Credentials(OcpiObject, kw_only=True):
    """credentials.asciidoc "Credentials object"."""

    token: CredentialsToken
    url: Url
    roles: Annotated[list[CredentialsRole], msgspec.Meta(min_length=1)]

