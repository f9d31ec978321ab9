"""Every `/api/v1` operation is documented in the OpenAPI schema at `/schema`."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api

OUR_PATHS = {
    "/api/v1/sites/{site_id}/grid": {"get", "put"},
    "/api/v1/sites/{site_id}/signals": {"get"},
    "/api/v1/sites/{site_id}/signals/{kind}": {"put", "post"},
    "/api/v1/sessions/{country_code}/{party_id}/{session_id}/preferences": {"get", "put"},
}


def test_every_api_operation_is_documented_with_summary_schemas_and_bearer_security(
    api: Api, client: httpx.Client
) -> None:
    schema = client.get(f"{api.url}/schema/openapi.json").json()
    assert schema["components"]["securitySchemes"]["BearerToken"] == {
        **schema["components"]["securitySchemes"]["BearerToken"],
        "type": "http",
        "scheme": "bearer",
    }
    schemas = schema["components"]["schemas"]
    for path, methods in OUR_PATHS.items():
        assert set(schema["paths"][path]) >= methods, path
        for method in methods:
            op = schema["paths"][path][method]
            assert op["summary"] and op["description"], (path, method)
            assert op["security"] == [{"BearerToken": []}], (path, method)
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            assert ok.rsplit("/", 1)[1] in schemas
            assert {"401", "403"} <= set(op["responses"]), (path, method)
            assert op["responses"]["401"]["content"]["application/problem+json"]
            if method in ("put", "post"):
                body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert body.rsplit("/", 1)[1] in schemas
                assert "422" in op["responses"]
    prefs = schemas["ChargingPreferences"]["properties"]
    assert set(prefs) == {"profile_type", "departure_time", "energy_need", "discharge_allowed"}


def test_the_signal_rules_are_in_the_schema(api: Api, client: httpx.Client) -> None:
    schema = client.get(f"{api.url}/schema/openapi.json").json()
    for method in ("put", "post"):
        text = schema["paths"]["/api/v1/sites/{site_id}/signals/{kind}"][method]["description"]
        assert "same source" in text and "minimum" in text and "most" in text and "recently submitted" in text
        assert "idempotent" in text.lower()
