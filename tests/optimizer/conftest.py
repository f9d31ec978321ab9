"""Fixtures of the optimizer tests (helpers live in `tests.optimizer.support`)."""

from __future__ import annotations

import pytest

from optimizer import SolveOptions


@pytest.fixture
def options() -> SolveOptions:
    """Default solver options."""
    return SolveOptions()
