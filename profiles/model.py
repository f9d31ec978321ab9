"""Inputs of profile building: the electrical facts of a charging point and per-party settings."""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from ocpi221.chargingprofiles import ChargingRateUnit
from ocpi221.locations import PHASES, PowerType

__all__ = ["ElectricalFacts", "ProfileSettings", "facts_from_connector"]


def phase_count(power_type: PowerType) -> Literal[1, 2, 3]:
    """`ElectricalFacts.phases` of a PowerType (`ocpi221.locations.PHASES`; DC: 3, never used for DC)."""
    phases = PHASES[power_type]
    return 1 if phases == 1 else 2 if phases == 2 else 3


def _non_negative_or_none(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number or None, got {value!r}")


def _positive_or_none(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number or None, got {value!r}")


class ElectricalFacts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a session's EVSE/connector (and vehicle, where known) allows, in SI units.

    For AC, `limit[A] = power[W] / (voltage_v * phases)`; for DC the profile is in W and the
    current facts are only used to bound the power.
    """

    phases: Literal[1, 2, 3] = 3
    """Number of AC phases used (from `power_type`); ignored for DC."""
    dc: bool = False
    voltage_v: float = 230.0
    """AC: line-to-neutral voltage (V) used to convert A per phase <-> W (Connector `max_voltage`
    is line-to-neutral for AC_3_PHASE). DC: the connector's maximum voltage. 230 V is the European
    nominal line-to-neutral voltage (EN 50160)."""
    max_amperage_a: float | None = None
    """Connector `max_amperage` (A; per phase for AC)."""
    max_electric_power_w: float | None = None
    """Connector `max_electric_power` (W), set by the CPO when lower than V x A."""
    min_current_a: float | None = None
    """Minimum charging current of the vehicle/EVSE (A per phase for AC), when known."""
    min_power_w: float | None = None
    """Minimum charging power of the vehicle/EVSE (W), when known."""

    def __post_init__(self) -> None:
        """Reject facts that would make conversions meaningless."""
        if self.phases not in (1, 2, 3):
            raise ValueError(f"phases must be 1, 2 or 3, got {self.phases!r}")
        if not (math.isfinite(self.voltage_v) and self.voltage_v > 0):
            raise ValueError(f"voltage_v must be positive, got {self.voltage_v!r}")
        for name in ("max_amperage_a", "max_electric_power_w"):  # 0: the EVSE cannot charge
            _non_negative_or_none(name, getattr(self, name))
        for name in ("min_current_a", "min_power_w"):
            _positive_or_none(name, getattr(self, name))

    @property
    def w_per_a(self) -> float:
        """Watts per ampere (per phase for AC): `voltage_v * phases` for AC, `voltage_v` for DC."""
        return self.voltage_v if self.dc else self.voltage_v * self.phases

    @property
    def max_power_w(self) -> float | None:
        """The EVSE maximum (W): the lower of `max_electric_power_w` and V x A (x phases), or None."""
        bounds = [self.max_electric_power_w] if self.max_electric_power_w is not None else []
        if self.max_amperage_a is not None:
            bounds.append(self.max_amperage_a * self.w_per_a)
        return min(bounds) if bounds else None

    @property
    def known_min_power_w(self) -> float | None:
        """The vehicle/EVSE minimum in W (the higher of the two minimums given); None if unknown."""
        bounds = [self.min_power_w] if self.min_power_w is not None else []
        if self.min_current_a is not None:
            bounds.append(self.min_current_a * self.w_per_a)
        return max(bounds) if bounds else None


def facts_from_connector(
    power_type: str,
    *,
    max_voltage: float,
    max_amperage: float | None = None,
    max_electric_power: float | None = None,
    min_current_a: float | None = None,
    min_power_w: float | None = None,
) -> ElectricalFacts:
    """Derive electrical facts from an OCPI Connector's fields (mod_locations.asciidoc "Connector").

    Args:
        power_type: the Connector `power_type` value (`AC_1_PHASE`, ..., `DC`).
        max_voltage: Connector `max_voltage` (V; line to neutral for AC).
        max_amperage: Connector `max_amperage` (A).
        max_electric_power: Connector `max_electric_power` (W), if given.
        min_current_a: minimum current of the vehicle/EVSE (A per phase), if known.
        min_power_w: minimum power of the vehicle/EVSE (W), if known.

    Returns:
        The facts; phases and the DC flag come from `power_type`.

    Raises:
        ValueError: for an unknown `power_type` or invalid numbers.
    """
    try:
        kind = PowerType(power_type)
    except ValueError:
        raise ValueError(f"unknown power_type {power_type!r}") from None
    return ElectricalFacts(
        phases=phase_count(kind),
        dc=kind == PowerType.DC,
        voltage_v=max_voltage,
        max_amperage_a=max_amperage,
        max_electric_power_w=max_electric_power,
        min_current_a=min_current_a,
        min_power_w=min_power_w,
    )


class ProfileSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How profiles are built and compared; one value per party (CPO) where they differ.

    Every default states its unit and why it has that value.
    """

    ac_charging_rate_unit: ChargingRateUnit = ChargingRateUnit.A
    """Unit for AC sessions. A per phase by default (ocpi-notes §10.1: the maintainers advise not to
    use W for AC); W only for a party that demands it. DC always uses W."""
    max_periods: int = 10
    """Most periods in one profile. OCPP charge points advertise a small ChargingScheduleMaxPeriods
    and OCPI gives no number, so the default is conservative; raise it per party."""
    failsafe_delay_s: int = 3600
    """Seconds from the profile start to the failsafe tail (s). One hour: twelve 300 s planning
    cycles in which a working service re-sends, yet a lost service hands the site back to its
    failsafe limit within the hour."""
    resend_margin_s: int = 900
    """Re-send a profile when its failsafe tail is nearer than this (s): three 300 s planning
    cycles, so one refused (TOO_OFTEN) or lost request still leaves time for another."""
    material_a: float = 1.0
    """An increase smaller than this (A per phase) is not worth a new request: about 0.7 kW on three
    phases, the same order as the 0.1 A rounding summed over a few cycles."""
    material_w: float = 500.0
    """The same threshold for W profiles (W); close to `material_a` on one 230 V phase."""
    material_s: int = 60
    """A difference that lasts at most this long (s) is not material: one minute absorbs a step that
    moved by a few seconds, far below the 300 s planning cycle."""
    ac_floor_a: float = 6.0
    """Lowest AC current a charge point can signal (A per phase): the IEC 61851-1 control pilot
    has no duty cycle below 6 A, so a smaller non-zero limit would be raised to 6 A or ignored."""
    compliance_over_w: float = 25.0
    """Applied limit above the plan tolerated in compliance (W): just above one 0.1 A step on one
    230 V phase (23 W), the rounding a CPO may apply when converting our limit."""
    compliance_under_w: float = 25.0
    """Applied limit below what we would send, tolerated in compliance (W); same reason."""
    compliance_under_ratio: float = 0.05
    """Relative tolerance below what we would send (fraction): 5 % covers a CPO converting A to W
    with 220 V where we use 230 V (-4.3 %)."""

    def __post_init__(self) -> None:
        """Reject settings that cannot produce a valid profile."""
        if self.max_periods < 1:
            raise ValueError(f"max_periods must be at least 1, got {self.max_periods}")
        for name in ("failsafe_delay_s", "resend_margin_s", "material_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in (
            "material_a",
            "material_w",
            "ac_floor_a",
            "compliance_over_w",
            "compliance_under_w",
            "compliance_under_ratio",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
