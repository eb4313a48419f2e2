"""Shared test helpers: where the acceptance runbooks are, and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "runbooks"
VALID_RUNBOOKS = sorted(FIXTURES.glob("*.playbook.toml"))
INVALID_RUNBOOKS = sorted((FIXTURES / "invalid").glob("*.playbook.toml"))


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def state_db(tmp_path) -> Path:
    """A fresh run index for one test."""
    return tmp_path / "state" / "runs.db"


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 120, cwd=None):
    """Run the real `playbook-nb` console entry point in a subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "playbook_nb", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=cwd,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    return run_cli
