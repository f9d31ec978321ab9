"""profiles: a session's planned power -> OCPI ChargingProfile, and compliance (pure).

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
from profiles.compliance import Compliance, ComplianceVerdict, assess_compliance
from profiles.dispatch import materially_different, resend_due
from profiles.model import ElectricalFacts, ProfileSettings, facts_from_connector
from profiles.ocpi import (
    ActiveChargingProfile,
    ChargingProfile,
    ChargingProfilePeriod,
    ChargingRateUnit,
    OcpiObject,
    spec_violations,
)

__all__ = [
    "LIMIT_STEP",
    "ActiveChargingProfile",
    "ChargingProfile",
    "ChargingProfilePeriod",
    "ChargingRateUnit",
    "Compliance",
    "ComplianceVerdict",
    "ElectricalFacts",
    "OcpiObject",
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
    "spec_violations",
    "w_per_unit",
]
