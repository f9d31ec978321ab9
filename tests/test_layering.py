"""The import direction (DESIGN.md): cposim -> scsp -> profiles -> optimizer, all may import ocpi221.

Inside `scsp/` the folders read in the order of the loop; the edges listed in `SCSP_NEVER` would run
back up. Only `scsp/store` talks to SQLite.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"ocpi221", "optimizer", "profiles", "scsp", "cposim"}
WEB = {"litestar", "httpx", "sqlite_utils", "sqlite3", "apscheduler", "uvicorn"}

# package -> top-level modules it must never import
FORBIDDEN = {
    "ocpi221": OURS - {"ocpi221"} | WEB | {"numpy", "scipy"},
    "optimizer": {"scsp", "profiles", "cposim"} | WEB,
    "profiles": {"scsp", "cposim"} | WEB,
    "scsp": {"cposim"},
}

# folder of scsp -> folders of scsp it must never import
SCSP_NEVER = {
    "records": {"store", "platform", "ingest", "planning", "dispatch", "api", "cli"},
    "store": {"platform", "ingest", "planning", "dispatch", "api", "cli"},
    "platform": {"ingest", "planning", "dispatch", "api", "cli"},
    "ingest": {"planning", "dispatch", "api", "cli"},
    "planning": {"api", "cli"},
    "dispatch": {"api", "cli"},
}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def edges(folder: Path) -> list[tuple[str, str]]:
    files = sorted(folder.rglob("*.py"))
    assert files, f"{folder} has no modules"
    return [(str(f.relative_to(ROOT)), m) for f in files for m in imported_modules(f)]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_against_the_dependency_direction(package: str) -> None:
    bad = [f"{f} imports {m}" for f, m in edges(ROOT / package) if m.split(".")[0] in FORBIDDEN[package]]
    assert bad == []


@pytest.mark.parametrize("folder", sorted(SCSP_NEVER))
def test_a_folder_of_scsp_never_imports_one_later_in_the_loop(folder: str) -> None:
    bad = [f"{f} imports {m}" for f, m in edges(ROOT / "scsp" / folder)
           if m.split(".")[0] == "scsp" and len(m.split(".")) > 1 and m.split(".")[1] in SCSP_NEVER[folder]]
    assert bad == []


def test_only_the_store_talks_to_sqlite() -> None:
    bad = [f"{f} imports {m}" for package in ("scsp", "cposim") for f, m in edges(ROOT / package)
           if m.split(".")[0] in {"sqlite3", "sqlite_utils"} and not f.startswith("scsp/store/")]
    assert bad == []


def test_the_simulator_uses_neither_planning_nor_dispatch() -> None:
    bad = [f"{f} imports {m}" for f, m in edges(ROOT / "cposim")
           if m.startswith(("scsp.planning", "scsp.dispatch", "scsp.ingest"))]
    assert bad == []


def test_the_checker_sees_a_backward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom scsp.app import create_app\n")
    assert imported_modules(module) == ["os", "scsp.app"]
