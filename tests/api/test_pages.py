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


def test_every_page_asset_is_package_data_so_an_installed_wheel_has_it() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, folder, glob in (("scsp", root / "scsp" / "static", "*"), ("cposim", root / "cposim", "*.html")):
        files = [p for p in folder.rglob(glob) if p.is_file() and "__pycache__" not in p.parts]
        assert files, folder
        for path in files:
            relative = path.relative_to(root / package).as_posix()
            # setuptools globs: `*` does not cross a slash.
            assert any(fnmatch.fnmatch(relative, p) and relative.count("/") == p.count("/")
                       for p in patterns[package]), relative


def test_conditional_reads_answer_304_while_nothing_changed(api: Api, client: httpx.Client) -> None:
    headers = api.auth("dso")
    for path in ("/api/v1/fleet", "/api/v1/commands", "/api/v1/sites/NL-CPA-LOC1/history?hours=1",
                 "/api/v1/sites/NL-CPA-LOC1/compliance"):
        first = client.get(f"{api.url}{path}", headers=headers)
        assert first.status_code == 200 and first.headers["ETag"].startswith('"'), path
        again = client.get(f"{api.url}{path}", headers={**headers, "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.content == b"", path
        other = client.get(f"{api.url}{path}", headers={**headers, "If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.json() == first.json(), path
