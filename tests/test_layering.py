"""The import direction is scsp -> profiles -> optimizer, never backwards; all may import ocpi221 (DESIGN.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN = {
    "ocpi221": {"scsp", "profiles", "optimizer", "cposim", "litestar", "httpx", "sqlite_utils", "apscheduler",
                "uvicorn", "numpy", "scipy"},
    "optimizer": {"scsp", "profiles", "litestar", "httpx", "sqlite_utils", "apscheduler", "uvicorn"},
    "profiles": {"scsp", "litestar", "httpx", "sqlite_utils", "apscheduler", "uvicorn"},
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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_against_the_dependency_direction(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    bad = [
        f"{f.relative_to(ROOT)} imports {m}"
        for f in files
        for m in imported_modules(f)
        if m.split(".")[0] in FORBIDDEN[package]
    ]
    assert bad == []


def test_the_checker_sees_a_backward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom scsp.app import create_app\n")
    assert imported_modules(module) == ["os", "scsp.app"]
