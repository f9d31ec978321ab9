"""Site grid settings: `GET/PUT /api/v1/sites/{site_id}/grid` (the grid connection the planner respects)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec
from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from scsp import errors
from scsp.api.auth import ALL_ROLES, ApiController, check_site, problem_responses, require_roles, require_site
from scsp.api.common import ApiInput, FieldErrors, SiteId, utcnow
from scsp.events import SiteEvents
from scsp.records.grid import ApiKey, ApiRole, ArrivalReserve, SiteSettings
from scsp.store import Store

log = logging.getLogger("scsp.api")

# Upper bounds that no real grid connection reaches: they reject unit mistakes (mW for W) and keep
# the optimizer's coefficients in a well-conditioned range.
MAX_POWER_W = 1e9
MAX_CURRENT_A = 1e5
# Nominal phase voltage, V: low-voltage grids are 100-240 V phase-to-neutral, 400-690 V between phases.
MIN_VOLTAGE_V, MAX_VOLTAGE_V = 100.0, 1000.0
# Single-phase EVSEs one site may list.
MAX_ASSIGNED_EVSES = 10_000

SiteChanged = Callable[[str], None]


class Phase(StrEnum):
    """The phase a single-phase EVSE is wired to."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


EvseUid = Annotated[str, msgspec.Meta(min_length=1, max_length=36)]


class GridSettingsIn(ApiInput, kw_only=True, forbid_unknown_fields=True):
    """The grid connection of a site, replaced whole by a PUT."""

    # Most the site may import from the grid, W.
    import_limit_w: Annotated[float, msgspec.Meta(gt=0, le=MAX_POWER_W, description="Import limit, W (> 0).")]
    # Most current per phase, A; null: no per-phase limit.
    phase_limit_a: (
        Annotated[
            float, msgspec.Meta(gt=0, le=MAX_CURRENT_A, description="Per-phase current limit, A; null: none.")
        ]
        | None
    ) = None
    # Nominal phase-to-neutral voltage, V; null: the configured default.
    voltage_v: (
        Annotated[
            float,
            msgspec.Meta(
                ge=MIN_VOLTAGE_V,
                le=MAX_VOLTAGE_V,
                description="Nominal voltage, V; null: configured default.",
            ),
        ]
        | None
    ) = None
    # What charge points fall back to when they lose us, W; at most `import_limit_w`.
    # null: the configured fraction of the import limit.
    failsafe_w: (
        Annotated[
            float,
            msgspec.Meta(
                ge=0, le=MAX_POWER_W, description="Failsafe limit, W, <= import_limit_w; null: default."
            ),
        ]
        | None
    ) = None
    # Phase of each single-phase EVSE, by EVSE uid.
    phase_assignment: Annotated[
        dict[EvseUid, Phase],
        msgspec.Meta(
            max_length=MAX_ASSIGNED_EVSES,
            description="Phase (L1/L2/L3) of each single-phase EVSE, by EVSE uid.",
        ),
    ] = {}
    # What the site's plan keeps free for arrivals before their first profile; null: the configured default.
    arrival_reserve: ArrivalReserve | None = None
    arrival_reserve_w: (
        Annotated[float, msgspec.Meta(ge=0, le=MAX_POWER_W, description="The reserve of `fixed`, W.")] | None
    ) = None


class GridSettings(msgspec.Struct, kw_only=True):
    """The grid connection of a site as stored."""

    site_id: str
    import_limit_w: float | None
    phase_limit_a: float | None
    voltage_v: float | None
    failsafe_w: float | None
    phase_assignment: dict[str, str]
    updated_at: datetime
    arrival_reserve: ArrivalReserve | None = None
    arrival_reserve_w: float | None = None


def _out(settings: SiteSettings) -> GridSettings:
    return GridSettings(
        site_id=settings.site_id,
        import_limit_w=settings.import_limit_w,
        phase_limit_a=settings.phase_limit_a,
        voltage_v=settings.voltage_v,
        failsafe_w=settings.failsafe_w,
        phase_assignment=dict(settings.phase_assignment),
        updated_at=settings.updated_at,
        arrival_reserve=settings.arrival_reserve,
        arrival_reserve_w=settings.arrival_reserve_w,
    )


def get_grid_settings(store: Store, key: ApiKey, site_id: str) -> GridSettings:
    """The stored grid settings of a site, or `NotFound` (the configured defaults apply)."""
    check_site(key, site_id)
    require_site(store, site_id)
    stored = store.grid.settings(site_id)
    if stored is None:
        raise errors.NotFound(f"no grid settings for site {site_id!r}: the configured defaults apply")
    return _out(stored)


def put_grid_settings(
    store: Store, key: ApiKey, site_id: str, body: GridSettingsIn, *, now: datetime, changed: SiteChanged
) -> GridSettings:
    """Validate and store a site's grid settings whole, then have the site re-planned."""
    check_site(key, site_id)
    require_site(store, site_id)
    problems = FieldErrors()
    if body.failsafe_w is not None and body.failsafe_w > body.import_limit_w:
        problems.add("failsafe_w", f"must not exceed import_limit_w ({body.import_limit_w:g} W)")
    if body.arrival_reserve == ArrivalReserve.FIXED and body.arrival_reserve_w is None:
        problems.add("arrival_reserve_w", "required with arrival_reserve \"fixed\"")
    problems.raise_any()
    settings = SiteSettings(
        site_id=site_id,
        import_limit_w=body.import_limit_w,
        phase_limit_a=body.phase_limit_a,
        voltage_v=body.voltage_v,
        failsafe_w=body.failsafe_w,
        phase_assignment={uid: phase.value for uid, phase in body.phase_assignment.items()},
        updated_at=now,
        arrival_reserve=body.arrival_reserve,
        arrival_reserve_w=body.arrival_reserve_w,
    )
    store.grid.put_settings(settings)
    log.info("grid settings changed", extra={"site": site_id, "import_limit_w": round(body.import_limit_w),
                                             "api_key": key.id})
    changed(site_id)
    return _out(settings)


GRID_READ_DESCRIPTION = """\
The grid connection of the site as set through this API (any role). 404 when nobody set it: then the
configured defaults apply (`defaults.site_limit_w`, `defaults.voltage_v`, `defaults.failsafe_fraction`).
"""

GRID_PUT_DESCRIPTION = f"""\
Replace the whole grid connection of the site (roles dso, admin): `import_limit_w` (W, required,
> 0, at most {MAX_POWER_W:g}), `phase_limit_a` (A per phase), `voltage_v` (nominal phase voltage,
{MIN_VOLTAGE_V:g}-{MAX_VOLTAGE_V:g} V), `failsafe_w` (W the charge points fall back to when they lose
us; at most `import_limit_w`) and `phase_assignment` (`{{evse_uid: "L1" | "L2" | "L3"}}` for
single-phase EVSEs). Fields left out or null fall back to the configured defaults. The object is
validated and stored whole, or nothing is stored (422 naming the field); the site is re-planned.
"""


class GridSettingsController(ApiController):
    """`/api/v1/sites/{site_id}/grid`: a site's grid connection."""

    path = "/api/v1/sites/{site_id:str}/grid"
    tags = ["grid settings"]

    @get(
        "/",
        sync_to_thread=True,
        guards=[require_roles(*ALL_ROLES)],
        summary="Read a site's grid settings",
        description=GRID_READ_DESCRIPTION,
        responses=problem_responses(401, 403, 404),
    )
    def read(
        self, store: NamedDependency[Store], api_key: NamedDependency[ApiKey], site_id: SiteId
    ) -> GridSettings:
        """The grid connection of the site as set through this API; 404 when none was set (defaults apply)."""
        return get_grid_settings(store, api_key, site_id)

    @put(
        "/",
        sync_to_thread=True,
        guards=[require_roles(ApiRole.dso, ApiRole.admin)],
        summary="Replace a site's grid settings",
        description=GRID_PUT_DESCRIPTION,
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    def replace(
        self,
        store: NamedDependency[Store],
        events: NamedDependency[SiteEvents],
        api_key: NamedDependency[ApiKey],
        site_id: SiteId,
        data: JSONBody[GridSettingsIn],
    ) -> GridSettings:
        """Replace the whole grid connection of the site (see `GRID_PUT_DESCRIPTION`)."""
        return put_grid_settings(store, api_key, site_id, data, now=utcnow(), changed=events.site_changed)
