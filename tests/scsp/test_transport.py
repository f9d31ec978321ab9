"""OCPI transport rules over real HTTP: envelope, auth matrix, ids, routing headers, malformed input."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from scsp.platform.transport import PageRequest, page_headers, page_request, token_candidates
from scsp.records.parties import PartyStatus, TokenKind
from tests.conftest import Running, register_party, token_header

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def registered_token(service: Running, pid: str = "CPA") -> str:
    """A registered CPO party created directly in the store, and the token it calls us with."""
    assert service.store is not None
    return register_party(service.store, "NL", pid)[0]


def invitation_token(service: Running) -> str:
    assert service.store is not None
    token = f"tokA-{time.monotonic_ns()}"
    service.store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="INV",
                               token=token, token_kind=TokenKind.A, now=datetime.now(UTC))
    return token


def assert_envelope(reply: httpx.Response) -> dict[str, object]:
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    assert isinstance(body["status_code"], int)
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    return body


def ocpi_routes(service: Running) -> list[tuple[str, str]]:
    """Every (method, path) the service serves under /ocpi, path parameters filled with samples."""
    out = []
    for route in service.app.routes:
        if not route.path.startswith("/ocpi"):
            continue
        path = re.sub(r"\{(\w+):\w+\}", lambda m: "NL" if m.group(1) == "country_code" else (
            "CPA" if m.group(1) == "party_id" else "x1"), route.path)
        for method in sorted(getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}):
            out.append((method, path))
    assert out
    return out


def test_every_response_is_an_envelope_with_a_utc_timestamp(service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    for method, path in ocpi_routes(service):
        reply = http.request(method, service.url + path, headers=token_header(token))
        assert reply.status_code < 500, (method, path, reply.text)
        assert_envelope(reply)


@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"])
def test_the_auth_matrix_on_the_configuration_modules(service: Running, http: httpx.Client, path: str) -> None:
    token = registered_token(service)
    url = service.url + path
    assert http.get(url).status_code == 401
    assert http.get(url, headers={"Authorization": "Bearer " + token}).status_code == 401
    assert http.get(url, headers=token_header("no-such-token")).status_code == 401
    assert http.get(url, headers=token_header(token)).status_code == 200
    assert http.get(url, headers=token_header(token, raw=True)).status_code == 200
    assert http.get(url, headers=token_header(invitation_token(service))).status_code == 200
    body = assert_envelope(http.get(url))
    assert body["status_code"] == 2000


def test_a_revoked_token_gets_401(service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    assert service.store is not None
    service.store.parties.revoke_token(token, now=datetime.now(UTC))
    reply = http.get(service.versions_url, headers=token_header(token))
    assert reply.status_code == 401 and assert_envelope(reply)["status_code"] == 2000


def test_request_and_correlation_ids_are_echoed_or_generated(service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    reply = http.get(service.versions_url, headers={**token_header(token), "X-Request-ID": "req-1",
                                                   "X-Correlation-ID": "corr-1"})
    assert (reply.headers["x-request-id"], reply.headers["x-correlation-id"]) == ("req-1", "corr-1")
    generated = http.get(service.versions_url)  # even a 401 carries them
    assert generated.status_code == 401
    assert len(generated.headers["x-request-id"]) == 36 and len(generated.headers["x-correlation-id"]) == 36
    missing = http.get(service.url + "/ocpi/2.2.1/nothing-here", headers=token_header(token))
    assert missing.status_code == 404 and assert_envelope(missing)["status_code"] == 2000
    assert missing.headers["x-request-id"]


def test_configuration_modules_carry_no_routing_headers(service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    for path in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"):
        reply = http.get(service.url + path, headers={**token_header(token), "OCPI-from-country-code": "NL",
                                                     "OCPI-from-party-id": "CPA"})
        assert not [h for h in reply.headers if h.lower().startswith("ocpi-")], path


def test_version_details_list_the_credentials_module_with_absolute_urls(service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    versions = http.get(service.versions_url, headers=token_header(token)).json()["data"]
    assert versions == [{"version": "2.2.1", "url": f"{service.url}/ocpi/2.2.1"}]
    details = http.get(versions[0]["url"], headers=token_header(token)).json()["data"]
    assert details["version"] == "2.2.1"
    endpoints = {e["identifier"]: e for e in details["endpoints"]}
    assert endpoints["credentials"]["url"] == f"{service.url}/ocpi/2.2.1/credentials"
    assert endpoints["credentials"]["role"] == "SENDER"


MALFORMED = {
    "truncated JSON": (b'{"token": "abc", "url": ', 400, 2000),
    "bad UTF-8": (b'{"token": "\xff\xfe"}', 400, 2000),
    "not JSON at all": (b"<xml/>", 400, 2000),
    "empty body": (b"", 400, 2000),
    "wrong types": (b'{"token": 12, "url": [], "roles": "CPO"}', 200, 2001),
    "missing fields": (b'{"url": "http://x"}', 200, 2001),
    "a JSON array": (b"[1, 2]", 200, 2001),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_bodies_get_an_envelope_and_never_a_server_error(
        service: Running, http: httpx.Client, case: str) -> None:
    body, http_status, ocpi_status = MALFORMED[case]
    tokens = {"registered": registered_token(service), "A": invitation_token(service)}
    for method, path in ocpi_routes(service):
        if method not in {"POST", "PUT", "PATCH"}:
            continue
        for kind, token in tokens.items():
            reply = http.request(method, service.url + path, content=body,
                                 headers={**token_header(token), "Content-Type": "application/json"})
            if reply.status_code == 405 and kind != "A" and path.endswith("/credentials"):
                continue  # credentials POST by a registered party is 405 before the body matters
            if ocpi_status == 2001 and reply.status_code == 404 and "/results/" in path:
                assert_envelope(reply)  # valid JSON for a result we never asked for: unknown id first
                continue
            if kind == "A" and not path.endswith("/credentials"):
                assert reply.status_code == 401, (method, path)  # token A only opens the registration
                assert_envelope(reply)
                continue
            assert reply.status_code == http_status, (case, method, path, kind, reply.text)
            assert assert_envelope(reply)["status_code"] == ocpi_status, (case, method, path, reply.text)


def test_a_huge_body_is_refused_with_an_envelope(service: Running, http: httpx.Client) -> None:
    token = invitation_token(service)
    huge = b'{"token": "' + b"a" * (service.config.http.max_body_bytes + 10) + b'"}'
    reply = http.post(service.url + "/ocpi/2.2.1/credentials", content=huge,
                      headers={**token_header(token), "Content-Type": "application/json"})
    assert reply.status_code == 413 and assert_envelope(reply)["status_code"] == 2000


def test_a_huge_body_on_a_functional_module_is_refused_with_an_envelope(
        service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    huge = b'{"id": "' + b"a" * (service.config.http.max_body_bytes + 10) + b'"}'
    reply = http.put(service.url + "/ocpi/2.2.1/sessions/NL/CPA/s1", content=huge,
                     headers={**token_header(token), "Content-Type": "application/json"})
    assert reply.status_code == 413, reply.text
    assert assert_envelope(reply)["status_code"] == 2000
    assert service.store is not None and service.store.sessions.find()[0] == []  # nothing stored


def test_healthz_answers_without_a_token(service: Running, http: httpx.Client) -> None:
    reply = http.get(f"{service.url}/healthz")
    assert reply.status_code == 200 and reply.json()["status"] == "ok" and reply.json()["version"]


def test_an_unknown_method_gets_405_with_an_envelope(service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    reply = http.patch(service.url + "/ocpi/2.2.1/credentials", headers=token_header(token), json={})
    assert reply.status_code == 405 and assert_envelope(reply)["status_code"] == 2000


def test_token_candidates_accept_base64_and_raw_tokens() -> None:
    encoded = base64.b64encode(b"example-token").decode()
    assert encoded == "ZXhhbXBsZS10b2tlbg=="  # ocpi-notes §1.1: no trailing newline
    assert token_candidates(f"Token {encoded}") == [("example-token", True), (encoded, False)]
    assert token_candidates("Token example-token") == [("example-token", False)]
    assert token_candidates("token   example-token ") == [("example-token", False)]
    assert token_candidates("Bearer example-token") == []
    assert token_candidates(None) == [] and token_candidates("Token ") == []


def test_a_token_encoded_with_the_spec_examples_trailing_newline_is_accepted() -> None:
    # ocpi-notes §1.1: the spec's own example "ZXhhbXBsZS10b2tlbgo=" is base64("example-token\n").
    assert token_candidates("Token ZXhhbXBsZS10b2tlbgo=") == [("example-token", True),
                                                            ("ZXhhbXBsZS10b2tlbgo=", False)]
    # One newline is the erratum; anything more is not a token.
    two = base64.b64encode(b"example-token\n\n").decode()
    assert token_candidates(f"Token {two}") == [(two, False)]


def test_the_erratum_form_of_a_known_token_opens_the_modules_it_may_use(
        service: Running, http: httpx.Client) -> None:
    token = registered_token(service)
    erratum = {"Authorization": "Token " + base64.b64encode(f"{token}\n".encode()).decode()}
    assert http.get(service.versions_url, headers=erratum).status_code == 200
    mine = http.get(f"{service.url}/ocpi/2.2.1/credentials", headers=erratum).json()["data"]
    assert mine["token"] == token  # the token itself, not the newline form
    assert http.get(f"{service.url}/ocpi/2.2.1/sessions/NL/CPA/s1", headers=erratum).status_code == 404
    unknown = {"Authorization": "Token " + base64.b64encode(b"no-such-token\n").decode()}
    assert http.get(service.versions_url, headers=unknown).status_code == 401
    doubled = {"Authorization": "Token " + base64.b64encode(f"{token}\n\n".encode()).decode()}
    assert http.get(service.versions_url, headers=doubled).status_code == 401


def test_pagination_headers_keep_the_filters_and_stop_on_the_last_page() -> None:
    page = page_request(0, 2, datetime(2026, 1, 1, tzinfo=UTC), None, max_limit=100)
    headers = page_headers("http://h/ocpi/2.2.1/sessions?offset=0&limit=2", page, total=5, returned=2,
                           max_limit=100)
    assert headers["X-Total-Count"] == "5" and headers["X-Limit"] == "100"
    assert headers["Link"] == ('<http://h/ocpi/2.2.1/sessions?date_from=2026-01-01T00%3A00%3A00Z'
                               '&offset=2&limit=2>; rel="next"')
    last = page_headers("http://h/x", PageRequest(offset=4, limit=2, date_from=None, date_to=None),
                        total=5, returned=1, max_limit=100)
    assert "Link" not in last
    assert page_request(None, 10_000, None, None, max_limit=100).limit == 100


def test_metrics_expose_parties_sessions_and_http_counts(service: Running, http: httpx.Client) -> None:
    registered_token(service)
    http.get(service.versions_url)  # a 401
    text = http.get(f"{service.url}/metrics").text
    assert 'scsp_parties{status="REGISTERED"} 1.0' in text
    assert 'scsp_http_requests_total{method="GET",status="4xx"}' in text
    assert "# TYPE scsp_parties_unreachable gauge" in text and "scsp_parties_unreachable 0.0" in text


def test_the_dashboard_page_reads_the_api_it_documents(service: Running, http: httpx.Client) -> None:
    page = http.get(f"{service.url}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    script = http.get(f"{service.url}/static/dashboard.js")
    assert script.status_code == 200 and '<script src="/static/dashboard.js">' in page.text
    paths = {route.path for route in service.app.routes}
    # Every API path the page fetches exists.
    for used in ("/api/v1/fleet", "/api/v1/commands", "/api/v1/sites/{site_id:str}/plan",
                 "/api/v1/sites/{site_id:str}/history", "/api/v1/sites/{site_id:str}/compliance"):
        assert used in paths
    for fetched in ("/api/v1/fleet", "/api/v1/commands", "/plan`", "/history?", "/compliance`", "Authorization"):
        assert fetched in script.text


@pytest.mark.parametrize("form", ["plain", "sha256"])
def test_metrics_can_require_a_key(tmp_path: Path, http: httpx.Client, form: str) -> None:
    import hashlib

    from scsp.app import create_app, edge
    from scsp.platform.serving import ServerThread, bind
    from tests.conftest import service_config

    key = "metrics-key-0123456789abcdef"
    configured = key if form == "plain" else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    sock = bind("127.0.0.1", 0)
    config = service_config(tmp_path, sock.getsockname()[1])
    config = msgspec.structs.replace(config, http=msgspec.structs.replace(config.http, metrics_key=configured))
    app = create_app(config)
    running = Running(ServerThread(edge(app), sock).start(), config, app.state.store, app)
    try:
        url = f"{running.url}/metrics"
        for headers in ({}, {"Authorization": "Bearer wrong-key-wrong-key"}, {"Authorization": f"Token {key}"}):
            refused = http.get(url, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
            assert "scsp_" not in refused.text
        allowed = http.get(url, headers={"Authorization": f"Bearer {key}"})
        assert allowed.status_code == 200 and "scsp_parties" in allowed.text
    finally:
        running.thread.stop()
