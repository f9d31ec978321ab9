"""The pages a person opens: `/`, `/schema`, `/dashboard` and their assets, served from the package alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api
from tests.conftest import Running, start_simulator

# Every src/href of a page: a page that names another host would need the network.
LINKS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""")


def local_links(page: str) -> list[str]:
    links = LINKS.findall(page)
    assert links
    outside = [link for link in links if re.match(r"^[a-z]+:", link) and not link.startswith("data:")]
    assert outside == []
    return links


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Running]:
    running = start_simulator(tmp_path)
    yield running
    running.thread.stop()


def test_the_landing_page_links_dashboard_docs_schema_and_versions(api: Api, client: httpx.Client) -> None:
    reply = client.get(f"{api.url}/")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    links = local_links(reply.text)
    assert {"/dashboard", "/schema", "/schema/openapi.json", "/ocpi/versions"} <= set(links)
    for link in links:
        if link.startswith("/") and link != "/ocpi/versions":
            assert client.get(f"{api.url}{link}").status_code in (200, 401), link


def test_the_api_docs_load_their_assets_from_this_server(api: Api, client: httpx.Client) -> None:
    page = client.get(f"{api.url}/schema")
    assert page.status_code == 200
    assert "cdn." not in page.text and "validator.swagger.io" not in page.text
    assert "validatorUrl: null" in page.text
    scripts = [link for link in local_links(page.text) if link.startswith("/static/")]
    assert len(scripts) == 3
    for link in scripts:
        asset = client.get(f"{api.url}{link}")
        assert asset.status_code == 200 and len(asset.content) > 10_000, link
        assert asset.headers["content-type"].startswith("text/css" if link.endswith(".css") else "text/javascript")


def test_vendored_libraries_ship_with_their_licences(api: Api, client: httpx.Client) -> None:
    for path in ("/static/vendor/uplot/LICENSE", "/static/vendor/swagger-ui/LICENSE"):
        reply = client.get(f"{api.url}{path}")
        assert reply.status_code == 200 and "permission" in reply.text.lower(), path
    assert client.get(f"{api.url}/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    assert client.get(f"{api.url}/static/nothing.js").status_code == 404


def test_the_dashboard_page_needs_nothing_from_another_host(api: Api, client: httpx.Client) -> None:
    page = client.get(f"{api.url}/dashboard")
    assert page.status_code == 200
    for link in local_links(page.text):
        if link.startswith("/static/"):
            assert client.get(f"{api.url}{link}").status_code == 200, link


def test_the_simulator_landing_page_links_state_meter_and_control_api(
        simulator: Running, client: httpx.Client) -> None:
    reply = client.get(f"{simulator.url}/")
    assert reply.status_code == 200
    links = set(local_links(reply.text))
    assert {"/sim/state", "/sim/meter", "/sim/commands", "/sim/faults", "/schema"} <= links
    for link in ("/sim/state", "/sim/meter", "/sim/faults", "/schema"):
        assert client.get(f"{simulator.url}{link}").status_code == 200, link
