"""Write `hostile.json`: the hostile corpus run by tests/scsp/test_corpus.py against every receiver and /api/v1.

    .venv/bin/python tests/corpus/build_corpus.py

Each case: a name, the request (method, path, who calls, the body) and the answer the protocol
gives: OCPI envelope status (HTTP and OCPI code) under /ocpi, RFC 9457 problem status on /api/v1,
and whether the request may change what is stored. Bodies are JSON values (`json`), raw text
(`text`), hex bytes (`hex`, for invalid UTF-8), a repeated filler (`repeat`, for oversize bodies
without a megabyte in the repository), `nest` arrays nested that deep, or no body (`none`).
`$NOW+S` inside strings becomes a UTC DateTime S seconds from the moment the test runs (signals
and preferences must lie in the future).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUT = HERE / "hostile.json"

STAMP = "2030-01-01T00:00:00Z"
LATER = "2030-01-01T00:05:00Z"
CC, PID, LOC, SID, UID, CID = "NL", "CPA", "LOC-1", "S-1", "3256", "1"

CONNECTOR = {"id": CID, "standard": "IEC_62196_T2", "format": "CABLE", "power_type": "AC_3_PHASE",
             "max_voltage": 230, "max_amperage": 16, "last_updated": STAMP}
EVSE = {"uid": UID, "status": "CHARGING", "capabilities": ["CHARGING_PROFILE_CAPABLE"],
        "connectors": [CONNECTOR], "last_updated": STAMP}
LOCATION = {"country_code": CC, "party_id": PID, "id": LOC, "publish": True, "address": "Street 1",
            "city": "Town", "country": "NLD", "coordinates": {"latitude": "52.0", "longitude": "5.0"},
            "time_zone": "Europe/Amsterdam", "evses": [EVSE], "last_updated": STAMP}
SESSION = {"country_code": CC, "party_id": PID, "id": SID, "start_date_time": STAMP, "kwh": 1.5,
           "cdr_token": {"country_code": CC, "party_id": PID, "uid": "TOK1", "type": "RFID", "contract_id": "C1"},
           "auth_method": "WHITELIST", "location_id": LOC, "evse_uid": UID, "connector_id": CID,
           "currency": "EUR", "status": "ACTIVE", "last_updated": STAMP,
           "charging_periods": [{"start_date_time": STAMP, "dimensions": [{"type": "ENERGY", "volume": 1.5}]}],
           "total_cost": {"excl_vat": 0.5, "incl_vat": 0.6}}
ACTIVE = {"start_date_time": STAMP, "charging_profile": {
    "charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16.0}]}}
CLIENT_INFO = {"party_id": PID, "country_code": CC, "role": "CPO", "status": "CONNECTED", "last_updated": STAMP}
GRID = {"import_limit_w": 50000.0, "failsafe_w": 10000.0}
SIGNAL = {"source": "corpus", "points": [{"start": "$NOW+0", "end": "$NOW+3600", "value": 40000.0}]}
PREFERENCES = {"profile_type": "CHEAP", "departure_time": "$NOW+7200", "energy_need": 20.0}

SESSION_URL = f"/ocpi/2.2.1/sessions/{CC}/{PID}/{SID}"
LOCATION_URL = f"/ocpi/2.2.1/locations/{CC}/{PID}/{LOC}"
SITE = f"{CC}-{PID}-{LOC}"

# name -> (method, path, who calls, valid body, kind): `ocpi` or `api`; bodies checked field by field
# only where `valid` is given (a body of Any is read by the handler, not by the decoder).
TARGETS: dict[str, tuple[str, str, str, Any, str]] = {
    "session_put": ("PUT", SESSION_URL, "cpo", SESSION, "ocpi"),
    "session_patch": ("PATCH", SESSION_URL, "cpo", {"kwh": 2.0, "last_updated": LATER}, "ocpi"),
    "location_put": ("PUT", LOCATION_URL, "cpo", LOCATION, "ocpi"),
    "evse_put": ("PUT", f"{LOCATION_URL}/{UID}", "cpo", EVSE, "ocpi"),
    "connector_put": ("PUT", f"{LOCATION_URL}/{UID}/{CID}", "cpo", CONNECTOR, "ocpi"),
    "location_patch": ("PATCH", LOCATION_URL, "cpo", {"name": "Renamed", "last_updated": LATER}, "ocpi"),
    "evse_patch": ("PATCH", f"{LOCATION_URL}/{UID}", "cpo", {"status": "AVAILABLE", "last_updated": LATER}, "ocpi"),
    "connector_patch": ("PATCH", f"{LOCATION_URL}/{UID}/{CID}", "cpo", {"max_amperage": 32, "last_updated": LATER},
                        "ocpi"),
    "active_profile_put": ("PUT", f"/ocpi/2.2.1/chargingprofiles/{SID}", "cpo", ACTIVE, "ocpi"),
    "result_post": ("POST", "/ocpi/2.2.1/chargingprofiles/results/unknown-request", "cpo", None, "ocpi"),
    "hubclientinfo_put": ("PUT", f"/ocpi/2.2.1/hubclientinfo/{CC}/{PID}", "cpo", None, "ocpi"),
    "credentials_put": ("PUT", "/ocpi/2.2.1/credentials", "cpo", None, "ocpi"),
    "grid_put": ("PUT", f"/api/v1/sites/{SITE}/grid", "admin", GRID, "api"),
    "signal_put": ("PUT", f"/api/v1/sites/{SITE}/signals/import_limit", "admin", SIGNAL, "api"),
    "preferences_put": ("PUT", f"/api/v1/sessions/{CC}/{PID}/{SID}/preferences", "admin", PREFERENCES, "api"),
}

MAX_BODY = 1_048_576


def refused(kind: str, *, syntax: bool) -> dict[str, Any]:
    """The answer to a refused body: not JSON -> HTTP 400 / 2000; invalid field -> 2001 / 422."""
    if kind == "api":
        return {"http": 400 if syntax else 422}
    return {"http": 400, "ocpi": 2000} if syntax else {"http": 200, "ocpi": 2001}


def case(name: str, target: str, body: dict[str, Any], expect: dict[str, Any], *, path: str | None = None,
         who: str | None = None, changes: bool = False) -> dict[str, Any]:
    method, url, caller, _, _ = TARGETS[target]
    return {"name": name, "target": target, "method": method, "path": path or url, "who": who or caller,
            "body": body, "expect": expect, "changes": changes}


def at(doc: Any, path: tuple[str | int, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def without(doc: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != field}


def syntax_cases() -> list[dict[str, Any]]:
    """Bodies that are not JSON at all, or too big: the same answer on every endpoint."""
    out = []
    for target, (_, _, _, valid, kind) in TARGETS.items():
        sample = json.dumps(valid if valid is not None else {"token": "x"})
        for name, body in (
            ("empty body", {"text": ""}),
            ("truncated JSON", {"text": sample[: len(sample) // 2]}),
            ("not JSON", {"text": "<xml>hello</xml>"}),
            ("invalid UTF-8", {"hex": (b'{"id": "\xff\xfe\xfd"}').hex()}),
            ("NaN literal", {"text": '{"kwh": NaN, "limit": NaN}'}),
            ("Infinity literal", {"text": '{"kwh": Infinity}'}),
            ("deep nesting", {"nest": 100_000}),
        ):
            out.append(case(f"{target}: {name}", target, body, refused(kind, syntax=True)))
        out.append(case(f"{target}: oversize body", target,
                        {"repeat": {"prefix": '{"pad": "', "fill": "a", "count": MAX_BODY + 16, "suffix": '"}'}},
                        {"http": 413, "ocpi": 2000} if kind == "ocpi" else {"http": 413}))
    return out


# Field-level poison per target: (name, path in the body, value). Each is valid JSON with one bad value.
POISON: dict[str, list[tuple[str, tuple[str | int, ...], Any]]] = {
    "session_put": [
        ("kwh NaN string", ("kwh",), "NaN"), ("kwh Infinity string", ("kwh",), "Infinity"),
        ("kwh -Infinity string", ("kwh",), "-Infinity"), ("kwh as string", ("kwh",), "5"),
        ("negative kwh", ("kwh",), -3.0), ("volume NaN string", ("charging_periods", 0, "dimensions", 0, "volume"),
                                           "NaN"),
        ("total_cost NaN string", ("total_cost", "excl_vat"), "NaN"),
        ("last_updated as integer", ("last_updated",), 123),
        ("start as integer", ("start_date_time",), 1700000000), ("37-character id", ("id",), "S" * 37),
        ("unicode id", ("id",), "S-\u00df\u00e9"), ("oversize id", ("id",), "S" * 20_000),
        ("status unknown", ("status",), "EXPLODED"), ("kwh as object", ("kwh",), {"v": 1}),
        ("location 37 characters", ("location_id",), "L" * 37),
    ],
    "session_patch": [
        ("kwh NaN string", ("kwh",), "NaN"), ("kwh as string", ("kwh",), "2"), ("negative kwh", ("kwh",), -1.0),
        ("last_updated as integer", ("last_updated",), 1893456000),
    ],
    "location_put": [
        ("negative voltage", ("evses", 0, "connectors", 0, "max_voltage"), -230),
        ("zero voltage", ("evses", 0, "connectors", 0, "max_voltage"), 0),
        ("voltage as string", ("evses", 0, "connectors", 0, "max_voltage"), "230"),
        ("negative amperage", ("evses", 0, "connectors", 0, "max_amperage"), -16),
        ("last_updated as integer", ("last_updated",), 123), ("unicode id", ("id",), "L\u00f6c"),
        ("37-character evse uid", ("evses", 0, "uid"), "E" * 37), ("publish as string", ("publish",), "true"),
    ],
    "evse_put": [
        ("negative voltage", ("connectors", 0, "max_voltage"), -1), ("unicode uid", ("uid",), "\u00e9vse"),
        ("last_updated as integer", ("last_updated",), 0),
    ],
    "connector_put": [
        ("negative voltage", ("max_voltage",), -400), ("amperage as string", ("max_amperage",), "16"),
        ("power NaN string", ("max_electric_power",), "NaN"),
    ],
    "location_patch": [("last_updated as integer", ("last_updated",), 123)],
    "evse_patch": [("status unknown", ("status",), "EXPLODED"), ("last_updated as integer", ("last_updated",), 5)],
    "connector_patch": [("negative voltage", ("max_voltage",), -230), ("voltage as string", ("max_voltage",), "230"),
                        ("amperage NaN string", ("max_amperage",), "NaN")],
    "active_profile_put": [
        ("limit NaN string", ("charging_profile", "charging_profile_period", 0, "limit"), "NaN"),
        ("limit Infinity string", ("charging_profile", "charging_profile_period", 0, "limit"), "Infinity"),
        ("limit as string", ("charging_profile", "charging_profile_period", 0, "limit"), "16"),
        ("negative limit", ("charging_profile", "charging_profile_period", 0, "limit"), -1.0),
        ("start as integer", ("start_date_time",), 123),
        ("negative start_period", ("charging_profile", "charging_profile_period", 0, "start_period"), -60),
    ],
    "grid_put": [
        ("limit as string", ("import_limit_w",), "50000"), ("limit NaN string", ("import_limit_w",), "NaN"),
        ("negative limit", ("import_limit_w",), -1.0), ("failsafe Infinity string", ("failsafe_w",), "Infinity"),
    ],
    "signal_put": [
        ("value as string", ("points", 0, "value"), "40000"), ("value NaN string", ("points", 0, "value"), "NaN"),
        ("start as integer", ("points", 0, "start"), 1700000000), ("negative limit", ("points", 0, "value"), -5.0),
    ],
    "preferences_put": [
        ("energy as string", ("energy_need",), "20"), ("negative energy", ("energy_need",), -20.0),
        ("departure as integer", ("departure_time",), 1893456000), ("energy NaN string", ("energy_need",), "NaN"),
    ],
}


def value_cases() -> list[dict[str, Any]]:
    """Valid JSON with one bad value: 2001 naming the field on OCPI, 422 on /api/v1."""
    out = []
    for target, poisons in POISON.items():
        _, _, _, valid, kind = TARGETS[target]
        for name, path, value in poisons:
            expect = {**refused(kind, syntax=False), "names": str(path[-1])}
            out.append(case(f"{target}: {name}", target, {"json": at(valid, path, value)}, expect))
        if kind == "ocpi":
            out.append(case(f"{target}: JSON array", target, {"json": [1, 2]}, refused(kind, syntax=False)))
            out.append(case(f"{target}: JSON null", target, {"json": None}, refused(kind, syntax=False)))
    return out


def url_cases() -> list[dict[str, Any]]:
    """Ids in the URL, other parties' URLs, case variants, PATCH without last_updated."""
    long_id, uni = "S" * 37, "S-%C3%9F"
    out = [
        case("session_put: 37-character id in the URL", "session_put", {"json": SESSION},
             {"http": 200, "ocpi": 2001, "names": "session_id"}, path=f"/ocpi/2.2.1/sessions/{CC}/{PID}/{long_id}"),
        case("session_put: unicode id in the URL", "session_put", {"json": SESSION},
             {"http": 200, "ocpi": 2001, "names": "session_id"}, path=f"/ocpi/2.2.1/sessions/{CC}/{PID}/{uni}"),
        case("location_put: 37-character id in the URL", "location_put", {"json": LOCATION},
             {"http": 200, "ocpi": 2001, "names": "location_id"},
             path=f"/ocpi/2.2.1/locations/{CC}/{PID}/{'L' * 37}"),
        case("session_put: body id differs from the URL", "session_put", {"json": at(SESSION, ("id",), "S-2")},
             {"http": 200, "ocpi": 2001, "names": "id"}),
        case("session_patch: no last_updated", "session_patch", {"json": {"kwh": 3.0}},
             {"http": 200, "ocpi": 2001, "names": "last_updated"}),
        case("location_patch: no last_updated", "location_patch", {"json": {"name": "x"}},
             {"http": 200, "ocpi": 2001, "names": "last_updated"}),
        case("evse_patch: no last_updated", "evse_patch", {"json": {"status": "AVAILABLE"}},
             {"http": 200, "ocpi": 2001, "names": "last_updated"}),
        case("session_put: another party's URL", "session_put",
             {"json": {**SESSION, "country_code": "DE", "party_id": "XYZ"}}, {"http": 404, "ocpi": 2000},
             path=f"/ocpi/2.2.1/sessions/DE/XYZ/{SID}"),
        case("location_put: another party's URL", "location_put",
             {"json": {**LOCATION, "country_code": "DE", "party_id": "XYZ"}}, {"http": 404, "ocpi": 2000},
             path=f"/ocpi/2.2.1/locations/DE/XYZ/{LOC}"),
        case("session_put: another party in the body", "session_put",
             {"json": {**SESSION, "country_code": "DE", "party_id": "XYZ"}}, {"http": 200, "ocpi": 2001}),
        case("session_get: another party's session", "session_put", {"none": True}, {"http": 404, "ocpi": 2000},
             path="/ocpi/2.2.1/sessions/DE/XYZ/B-1"),
        case("session_put: no token", "session_put", {"json": SESSION}, {"http": 401, "ocpi": 2000}, who="none"),
        case("grid_put: no key", "grid_put", {"json": GRID}, {"http": 401}, who="none"),
        # Accepted: the same object under another spelling of its CiString id, and a negative price.
        case("session_put: lower-case id in the URL", "session_put",
             {"json": {**at(SESSION, ("id",), SID.lower()), "last_updated": LATER, "kwh": 2.5}},
             {"http": 200, "ocpi": 1000}, path=f"/ocpi/2.2.1/sessions/{CC}/{PID}/{SID.lower()}", changes=True),
        case("session_put: negative price", "session_put",
             {"json": {**at(SESSION, ("total_cost", "excl_vat"), -0.2), "last_updated": "2030-01-01T00:06:00Z"}},
             {"http": 200, "ocpi": 1000}, changes=True),
        case("evse_put: upper-case location id in the URL", "evse_put",
             {"json": {**EVSE, "last_updated": LATER}}, {"http": 200, "ocpi": 1000},
             path=f"/ocpi/2.2.1/locations/{CC}/{PID}/{LOC.lower()}/{UID}", changes=True),
    ]
    for item in out:
        if item["name"].startswith("session_get"):
            item["method"] = "GET"
    return out


def main() -> None:
    cases = syntax_cases() + value_cases() + url_cases()
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    base = {"session": SESSION, "location": LOCATION, "site": SITE}
    OUT.write_text(json.dumps({"base": base, "cases": cases}, indent=1, ensure_ascii=True) + "\n")
    print(f"{len(cases)} cases -> {OUT}")


if __name__ == "__main__":
    main()
