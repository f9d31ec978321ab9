"""The OpenAPI document tells the truth about OCPI operations: envelope errors, real statuses, Token auth."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Running, register_party, token_header


def ocpi_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in schema["paths"].items() if path.startswith("/ocpi")
            for method, op in ops.items()]


def test_ocpi_operations_document_the_envelope_their_statuses_and_the_token(service: Running,
                                                                           http: httpx.Client) -> None:
    schema = http.get(f"{service.url}/schema/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OcpiToken"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "Authorization"
    envelope = schema["components"]["schemas"]["OcpiEnvelope"]
    assert {"status_code", "timestamp"} <= set(envelope["required"])
    operations = ocpi_operations(schema)
    assert len(operations) >= 20
    for path, method, op in operations:
        assert op["security"] == [{"OcpiToken": []}], (path, method)
        statuses = set(op["responses"])
        assert {"200", "400", "401", "404"} <= statuses, (path, method)
        if method in ("put", "post", "patch"):
            assert "413" in statuses, (path, method)
        for status in statuses - {"200", "201"}:
            content = op["responses"][status]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/OcpiEnvelope"}, (path, method, status)
            assert "extra" not in str(content)
    paths = dict(((p, m), op) for p, m, op in operations)
    for path in ("/ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}",
                 "/ocpi/2.2.1/locations/{country_code}/{party_id}/{location_id}",
                 "/ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}"):
        assert "201" in paths[(path, "put")]["responses"], path
    for method in ("post", "put", "delete"):
        assert "405" in paths[("/ocpi/2.2.1/credentials", method)]["responses"]


def test_the_documented_error_is_what_is_answered(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    reply = http.put(f"{service.url}/ocpi/2.2.1/sessions/NL/STK/1", content=b"{", headers={
        **token_header(token), "Content-Type": "application/json"})
    assert reply.status_code == 400
    assert set(reply.json()) == {"status_code", "status_message", "timestamp"}


def test_a_405_carries_allow(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    reply = http.delete(f"{service.url}/ocpi/2.2.1/sessions/NL/STK/1", headers=token_header(token))
    assert reply.status_code == 405 and reply.json()["status_code"] == 2000
    assert {m.strip() for m in reply.headers["allow"].split(",")} >= {"GET", "PUT", "PATCH"}
    api = http.delete(f"{service.url}/api/v1/sites/X/grid")
    assert api.status_code == 405 and "PUT" in api.headers["allow"]
