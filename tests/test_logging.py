"""Logging through the standard library (issue 19.2): `[logging] level` and `PLAYBOOK_LOG_LEVEL` set what is
logged, plain lines on stderr off a terminal, a rotating file when `file_path` is configured, secrets masked
in every record."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

from conftest import run_cli, write_runbook

from playbook_nb.faces.logs import configure_logging

PLAIN_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) playbook_nb\.run: ")


def hello(tmp_path) -> Path:
    return write_runbook(tmp_path, "hello", "Hello", '[hello]\ntype = "Command"\ncommand_name = "echo hi"\n')


def test_log_level_from_the_environment_and_the_configuration_file(tmp_path):
    book, db = hello(tmp_path), tmp_path / "runs.db"
    default = run_cli("run", str(book), "--state-path", str(db), env={"PLAYBOOK_LOG_LEVEL": ""})
    assert default.returncode == 0 and "playbook_nb.run" not in default.stderr  # default: warnings only
    debug = run_cli("run", str(book), "--state-path", str(db), env={"PLAYBOOK_LOG_LEVEL": "DEBUG"})
    assert debug.returncode == 0, debug.stderr
    lines = [line for line in debug.stderr.splitlines() if PLAIN_LINE.match(line)]
    assert any("INFO playbook_nb.run: run 2 of 'Hello' started (terminal, actor " in line for line in lines)
    assert any("DEBUG playbook_nb.run: run 2: hello RUNNING attempt 1" in line for line in lines)
    assert any("INFO playbook_nb.run: run 2 ended OK" in line for line in lines)
    assert "\x1b[" not in debug.stderr  # plain lines off a terminal

    log_file = tmp_path / "logs" / "playbook.log"
    config = tmp_path / "playbook.toml"
    config.write_text(
        f'[logging]\nlevel = "WARNING"\nfile_path = "{log_file}"\nmax_size_mb = 1\nbackup_count = 2\n'
    )
    quiet = run_cli("run", str(book), "--state-path", str(db), env={"PLAYBOOK_CONFIG": str(config)})
    assert quiet.returncode == 0, quiet.stderr
    assert "playbook_nb.run" not in quiet.stderr  # WARNING: an OK run logs nothing
    assert log_file.exists() and log_file.read_text() == ""

    config.write_text(f'[logging]\nlevel = "INFO"\nfile_path = "{log_file}"\n')
    logged = run_cli("run", str(book), "--state-path", str(db), env={"PLAYBOOK_CONFIG": str(config)})
    assert logged.returncode == 0, logged.stderr
    text = log_file.read_text()
    assert "INFO playbook_nb.run: run 4 of 'Hello' started" in text and "run 4 ended OK" in text
    assert "DEBUG" not in text


def test_the_log_file_rotates_and_records_are_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_SECRET_TOKEN", "tok-0123456789-declared")
    path = tmp_path / "rot" / "playbook.log"
    configure_logging(
        SimpleNamespace(level="INFO", file_path=path, max_size_mb=1, backup_count=2), stderr=False
    )
    log = logging.getLogger("playbook_nb.test")
    try:
        for _ in range(300):
            log.info("x" * 10_000)
        log.warning("leaked %s and %s", "AKIAIOSFODNN7EXAMPLE", "tok-0123456789-declared")
    finally:
        configure_logging(
            SimpleNamespace(level="WARNING", file_path=None, max_size_mb=1, backup_count=0), stderr=False
        )
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["playbook.log", "playbook.log.1", "playbook.log.2"]  # rotated, two backups kept
    assert all(p.stat().st_size <= 1024 * 1024 + 20_000 for p in path.parent.iterdir())
    everything = "".join(p.read_text() for p in path.parent.iterdir())
    assert "WARNING playbook_nb.test: leaked ******** and ********" in path.read_text()
    assert "AKIAIOSFODNN7EXAMPLE" not in everything and "tok-0123456789-declared" not in everything


def test_ui_compact_output_leaves_out_command_output_and_the_table(tmp_path):
    book, db = hello(tmp_path), tmp_path / "runs.db"
    config = tmp_path / "playbook.toml"
    config.write_text('[ui]\ncompact_output = true\nprogress_style = "none"\ncolor_theme = "none"\n')
    plain = run_cli("run", str(book), "--state-path", str(db))
    compact = run_cli("run", str(book), "--state-path", str(db), env={"PLAYBOOK_CONFIG": str(config)})
    assert plain.returncode == 0 and compact.returncode == 0, compact.stderr
    assert "│ hi" in plain.stdout and "│ hi" not in compact.stdout  # the command's output line
    assert "┏" in plain.stdout and "┏" not in compact.stdout  # the summary table
    assert "hello OK" in compact.stdout and "record: run 2 in" in compact.stdout
