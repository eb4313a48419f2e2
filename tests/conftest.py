"""Shared test helpers: where the acceptance runbooks are, running the real CLI, writing runbooks, reading the
SQLite index, and creating a run in a store."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_server import TEST_URL_ENV, pg_bindir, pg_server

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "runbooks"
VALID_RUNBOOKS = sorted(FIXTURES.glob("*.playbook.toml"))
INVALID_RUNBOOKS = sorted((FIXTURES / "invalid").glob("*.playbook.toml"))
DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"

# The node states of a deploy_pipeline run that went well (gate approved, health check passed).
HEALTHY_STATES = {
    "build_app": "OK",
    "run_tests": "OK",
    "security_scan": "SKIPPED",
    "approve_deploy": "OK",
    "deploy_application": "OK",
    "health_check": "OK",
    "rollback": "SKIPPED",
    "notify_success": "OK",
    "notify_failure": "SKIPPED",
}

HEADER = """[runbook]
title = "{title}"
description = "written by a test"
version = "0.1.0"
author = "tests"
created_at = "2025-01-01T00:00:00Z"
"""


def write_runbook(directory: Path, name: str, title: str, body: str, variables: str = "") -> Path:
    """A runbook file written by a test: the standard header, then `body` (and `[variables]` if given)."""
    path = directory / f"{name}.playbook.toml"
    path.write_text((f"[variables]\n{variables}\n" if variables else "") + HEADER.format(title=title) + body)
    return path


def db_rows(db: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    """Rows straight from a SQLite run index, as with the sqlite3 shell."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# ---- store tests: one run created the same way on every backend ---------------------------------------
T0 = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)
RUNBOOK = '[runbook]\ntitle = "Deploy {{APP}}"\n\n[build]\ntype = "Command"\ncommand_name = "make"\n'


def new_run(store, workflow: str = "Deploy {{APP}}", *, started_at=None, nodes=("build", "gate", "ship")):
    return store.create_run(
        workflow=workflow,
        title=workflow.replace("{{APP}}", "web"),
        runbook_text=RUNBOOK,
        runbook_sha256=hashlib.sha256(RUNBOOK.encode()).hexdigest(),
        runbook_version="1.0.0",
        variables={"APP": "web", "TOKEN": "********"},
        params={"approvals": {"gate": "approve"}},
        trigger="terminal",
        actor="alice",
        host="box1",
        mode="headless",
        node_ids=list(nodes),
        started_at=started_at,
    )


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


# `playbook-nb` with Rich's console built before the command runs: `runs list` and `show` then print
# everything through Rich (app.plain_stdout and app.colour_stdout leave a built console its own), the
# reference their string writers are compared with (tests/test_cli_plain_output.py, test_terminal_ansi.py)
_THROUGH_RICH = (
    "import importlib, sys\n"
    "app = importlib.import_module('playbook_nb.faces.cli.app')\n"
    "app.real_console()\n"
    "sys.exit(app.run_app(sys.argv[1:]))\n"
)


def run_cli_through_rich(*args: str, env: dict | None = None, timeout: float = 120):
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", _THROUGH_RICH, *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli():
    return run_cli


# ---- PostgreSQL: one private server for the session (tests/pg_server.py), one database per test ----------


@pytest.fixture(scope="session")
def pg():
    """The session's PostgreSQL server."""
    if not os.environ.get(TEST_URL_ENV) and pg_bindir() is None:
        reason = (
            "PostgreSQL server binaries not found (apt-get install postgresql, or set PLAYBOOK_TEST_PG_URL)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    with pg_server() as server:
        yield server


@pytest.fixture
def pg_url(pg):
    url = pg.create_database()
    yield url
    pg.drop_database(url)
