"""Helpers for the abort, signal and crash tests: a runbook whose middle node runs a long command that is easy
to find in /proc, waiting for it by observed state (never by guessed delays), and measuring how long its
processes survive a signal."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from conftest import HEADER

CLI = [sys.executable, "-m", "playbook_nb"]


def long_runbook(directory: Path, title: str = "abort me") -> tuple[Path, str, Path]:
    """(runbook, marker, flag): `slow` runs `sleep` with a marker only it carries (a child shell and a
    grandchild, so a kill of the shell alone would not be enough) unless `flag` exists, so a resumed run goes
    through quickly once the test creates the flag."""
    marker = f"47.{uuid.uuid4().int % 10**6:06d}"
    flag = directory / "go-fast"
    command = f'test -e {flag} || {{ sh -c "sleep {marker}" & sleep {marker}; wait; }}; echo slow done'
    body = (
        '\n[first]\ntype = "Command"\ncommand_name = "echo first"\n'
        f'\n[slow]\ntype = "Command"\ncommand_name = {command!r}\ndepends_on = ["first"]\n'
        '\n[last]\ntype = "Command"\ncommand_name = "echo last"\ndepends_on = ["slow"]\n'
    )
    path = directory / "abort.playbook.toml"
    path.write_text(HEADER.format(title=title) + body)
    return path, marker, flag


def pids_with(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line holds `marker`."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        if marker.encode() in cmdline and stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def wait_for(predicate, timeout: float = 120.0, what: str = "condition", proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first (exit {proc.returncode})")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def seconds_until_gone(marker: str, timeout: float = 10.0) -> float:
    """How long the marked processes lived on (measured from /proc), after the caller's signal."""
    start = time.monotonic()
    while pids_with(marker) and time.monotonic() - start < timeout:
        time.sleep(0.02)
    return time.monotonic() - start


def start_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.Popen(
        [*CLI, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
    )


def rows(db: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def kill_all(marker: str) -> None:
    for pid in pids_with(marker):
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
