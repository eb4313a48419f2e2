"""Governance metadata (assumptions, owner, kpis) and KPI attainment over recorded runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import run_cli

from playbook_nb.adapters.store import Store
from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.kpis import kpi_attainment
from playbook_nb.domain.model import Kpis
from playbook_nb.domain.validation import parse_runbook

GOVERNED = """[runbook]
title = "governed"
owner = "sre-team"
assumptions = ["the load balancer drains in 30s", "backups ran tonight"]
kpis = { max_duration = "2m", target_success_rate = 0.75 }
[step]
type = "Command"
command_name = "echo hi"
"""


def test_metadata_is_parsed():
    meta = parse_runbook(GOVERNED).meta
    assert meta.owner == "sre-team" and len(meta.assumptions) == 2
    assert meta.kpis == Kpis(max_duration=120.0, target_success_rate=0.75)
    assert parse_runbook(GOVERNED.replace('"2m"', "90")).meta.kpis.max_duration == 90.0
    assert parse_runbook(GOVERNED.replace('"2m"', '"1h"')).meta.kpis.max_duration == 3600.0


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("0.75", "1.5", "from 0 to 1"),
        ('"2m"', '"soon"', "duration such as"),
        ('"2m"', "-5", "positive duration"),
        ("max_duration", "p95", "unknown KPI 'p95'"),
        ('["the load balancer drains in 30s", "backups ran tonight"]', "[1]", "expected sentences or"),
        ('owner = "sre-team"', "owner = 3", "expected a string"),
    ],
)
def test_metadata_validation(old, new, message):
    with pytest.raises(RunbookError, match=message):
        parse_runbook(GOVERNED.replace(old, new))


def seed_runs(store, durations_and_status, workflow="governed"):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i, (seconds, status) in enumerate(durations_and_status):
        run = store.create_run(
            workflow=workflow, title=workflow, runbook_text=GOVERNED, runbook_sha256="x" * 64, runbook_version=None,
            variables={}, params={}, trigger="terminal", actor="a", host="h", mode="headless", node_ids=["step"],
            started_at=start + timedelta(hours=i),
        )  # fmt: skip
        store.set_run_status(run.id, status, ended_at=start + timedelta(hours=i, seconds=seconds))


def test_attainment(tmp_path):
    with Store.open(tmp_path / "runs.db") as store:
        seed_runs(store, [(60, "OK"), (100, "OK"), (300, "NOK"), (30, "OK"), (10, "ABORTED")])
        att = kpi_attainment(store, "governed", Kpis(max_duration=120, target_success_rate=0.75))
    assert att["finished"] == 5 and att["ok"] == 3
    assert att["success_rate"] == pytest.approx(0.6) and att["success_rate_met"] is False
    assert att["timed_runs"] == 4 and att["within_max_duration"] == 3  # ABORTED runs are not timed
    assert att["share_within_max_duration"] == pytest.approx(0.75)
    assert att["p95_duration"] == pytest.approx(300) and att["max_duration_met"] is False


def test_no_runs_and_no_kpis(tmp_path):
    with Store.open(tmp_path / "runs.db") as store:
        att = kpi_attainment(store, "governed", None)
    assert att["runs"] == 0 and att["success_rate"] is None and att["success_rate_met"] is None


def test_info_shows_kpi_attainment(tmp_path):
    book = tmp_path / "governed.playbook.toml"
    book.write_text(GOVERNED)
    db = tmp_path / "runs.db"
    for _ in range(2):
        assert run_cli("run", str(book), "--state-path", str(db)).returncode == 0
    by_file = run_cli("info", "--runbook", str(book), "--state-path", str(db))
    assert by_file.returncode == 0, by_file.stderr
    assert "KPI attainment" in by_file.stdout and "2/2 runs within 2.0m" in by_file.stdout
    assert "100.0% (2/2 runs) vs target 75%" in by_file.stdout and "owner: sre-team" in by_file.stdout
    by_title = run_cli("info", "--workflow", "governed", "--state-path", str(db))
    assert "KPI attainment" in by_title.stdout and "assumes: backups ran tonight" in by_title.stdout
