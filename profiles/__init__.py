"""profiles: a session's planned power -> OCPI ChargingProfile, and compliance (pure).

`build` (plan -> profile), `failsafe` (the site failsafe limit in whole-vehicle shares),
`selection` (which of a site's new profiles to send), `dispatch` (materiality, re-send),
`compliance` (ActiveChargingProfile vs the plan), `whatif` (`scsp solve --profiles`).

No I/O and no clock: every time (`start`, `now`) is an argument. Imports only the standard
library, numpy, msgspec and `optimizer` (DESIGN.md, one-way rule).
"""

from profiles.build import (
    LIMIT_STEP,
    build_profile,
    coarsen_periods,
    failsafe_time,
    floor_to_step,
    profile_unit,
    w_per_unit,
)
from profiles.compliance import (
    Compliance,
    ComplianceVerdict,
    SiteLoad,
    active_anchor,
    assess_compliance,
    site_load_w,
)
from profiles.dispatch import materially_different, resend_due
from profiles.model import ElectricalFacts, ProfileSettings, facts_from_connector

__all__ = [
    "LIMIT_STEP",
    "Compliance",
    "ComplianceVerdict",
    "SiteLoad",
    "active_anchor",
    "site_load_w",
    "ElectricalFacts",
    "ProfileSettings",
    "assess_compliance",
    "build_profile",
    "coarsen_periods",
    "facts_from_connector",
    "failsafe_time",
    "floor_to_step",
    "materially_different",
    "profile_unit",
    "resend_due",
    "w_per_unit",
]
