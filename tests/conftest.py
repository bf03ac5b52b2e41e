"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tetrad.mini import make_mini


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> Path:
    """The mini benchmark, generated once per test session (about 10 s)."""
    return make_mini(tmp_path_factory.mktemp("mini") / "mini")
