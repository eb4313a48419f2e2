"""Reliability: what the run record looks like after the worst moments of a run, and that it always recovers.

- the terminal runner killed with SIGKILL at 20 seeded random points: the index stays intact, every attempt is
  complete or still RUNNING, `set-status ... ABORTED --force` marks the cut-short ones INTERRUPTED, and `resume`
  always finishes the run with every node OK exactly once;
- the kernel killed in the middle of a headless (papermill) run: index intact, the partial executed notebook
  filed, the run ABORTED and resumable;
- the artifact directory read-only, out of space, or not a directory: one clear error line, no traceback, and
  an intact index.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import run_cli

SHORT_NODES = 15


def _runbook(title: str, commands: list[str]) -> str:
    parts = [
        "[runbook]",
        f'title = "{title}"',
        'description = "reliability test"',
        'version = "1"',
        'author = "tests"',
        'created_at = "2025-01-01T00:00:00Z"',
        "",
    ]
    for i, command in enumerate(commands):
        parts += [f"[step_{i:02d}]", 'type = "Command"', f"command_name = {json.dumps(command)}", ""]
    return "\n".join(parts)


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _integrity(db: Path) -> str:
    with contextlib.closing(_connect(db)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def _runs(db: Path) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    with contextlib.closing(_connect(db)) as conn:
        return conn.execute("SELECT * FROM runs ORDER BY id").fetchall()


def _attempts(db: Path, run_id: int) -> list[sqlite3.Row]:
    with contextlib.closing(_connect(db)) as conn:
        return conn.execute(
            "SELECT * FROM attempts WHERE run_id = ? ORDER BY node_id, attempt", (run_id,)
        ).fetchall()


def _node_states(db: Path, run_id: int) -> dict[str, str]:
    with contextlib.closing(_connect(db)) as conn:
        return dict(conn.execute("SELECT node_id, state FROM node_states WHERE run_id = ?", (run_id,)))


def _broken_chains(db: Path, run_id: int) -> list[str]:
    from playbook_nb.adapters.store import Store

    with Store.open(db) as store:
        return store.verify_events(run_id)


def _assert_finished_once_each(db: Path, run_id: int, node_ids: list[str]) -> None:
    """The run is OK; every node is OK with exactly one OK attempt among its non-interrupted attempts."""
    (run,) = [r for r in _runs(db) if r["id"] == run_id]
    assert run["status"] == "OK", dict(run)
    assert _node_states(db, run_id) == dict.fromkeys(node_ids, "OK")
    attempts = _attempts(db, run_id)
    for node_id in node_ids:
        mine = [a for a in attempts if a["node_id"] == node_id]
        kept = [a["status"] for a in mine if a["status"] != "INTERRUPTED"]
        assert kept == ["OK"], (node_id, [dict(a) for a in mine])
    assert all(a["ended_at"] is not None for a in attempts)
    assert _broken_chains(db, run_id) == []


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "WARNING" not in line]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --- SIGKILL at random points ------------------------------------------------------------------------------


@pytest.mark.slow
def test_runner_killed_at_20_random_points_always_recovers(tmp_path):
    rng = random.Random(20250601)
    runbook = tmp_path / "kill.playbook.toml"
    runbook.write_text(_runbook("kill me", ["sleep 0.05"] * SHORT_NODES))
    node_ids = [f"step_{i:02d}" for i in range(SHORT_NODES)]
    db = tmp_path / "state" / "runs.db"
    # One undisturbed run first: the index exists, and it tells how long a run lasts on this machine.
    start = time.monotonic()
    done = run_cli("run", str(runbook), "--state-path", str(db))
    full = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}

    mid_run = 0
    for kill in range(20):
        before = {r["id"] for r in _runs(db)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "playbook_nb", "run", str(runbook), "--state-path", str(db)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(0.1, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        where = f"kill {kill}"

        assert _integrity(db) == "ok", where
        new = [r for r in _runs(db) if r["id"] not in before]
        if not new:
            continue  # killed before the run was created: nothing to recover
        (run,) = new
        run_id = run["id"]
        attempts = _attempts(db, run_id)
        for a in attempts:  # complete, or cut short while RUNNING; never half-written
            if a["status"] == "RUNNING":
                assert a["ended_at"] is None, (where, dict(a))
            else:
                assert a["status"] == "OK" and a["ended_at"] is not None, (where, dict(a))
        assert _broken_chains(db, run_id) == [], where
        if run["status"] == "OK":
            _assert_finished_once_each(db, run_id, node_ids)
            continue
        assert run["status"] == "RUNNING", (where, dict(run))
        mid_run += 1
        running = {(a["node_id"], a["attempt"]) for a in attempts if a["status"] == "RUNNING"}

        result = run_cli(
            "set-status", str(runbook), str(run_id), "ABORTED", "--force", "--state-path", str(db)
        )
        assert result.returncode == 0, (where, result.stderr)
        after = {(a["node_id"], a["attempt"]): a["status"] for a in _attempts(db, run_id)}
        assert all(after[key] == "INTERRUPTED" for key in running), (where, after)
        assert "RUNNING" not in after.values(), (where, after)

        result = run_cli("resume", str(runbook), str(run_id), "--state-path", str(db))
        assert result.returncode == 0, (where, result.stdout[-2000:], result.stderr)
        _assert_finished_once_each(db, run_id, node_ids)

    # The delays must actually land inside runs, or this test proves nothing.
    assert mid_run >= 10, f"only {mid_run} of 20 kills landed in the middle of a run"
    assert _integrity(db) == "ok"


# --- the kernel killed during a headless run -------------------------------------------------------------


def _kernel_of(pid: int, timeout: float = 60):
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for child in psutil.Process(pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any("ipykernel" in part for part in child.cmdline()):
                        return child
        except psutil.NoSuchProcess:
            return None
        time.sleep(0.05)
    return None


def _wait_for_ok_nodes(db: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        runs = _runs(db) if db.exists() else []
        if runs:
            states = _node_states(db, runs[-1]["id"])
            if sum(state == "OK" for state in states.values()) >= count:
                return runs[-1]["id"]
        time.sleep(0.05)
    raise AssertionError(f"the headless run never reached {count} OK nodes (exit {proc.poll()})")


@pytest.mark.slow
def test_kernel_killed_mid_headless_run_leaves_a_resumable_record(tmp_path):
    runbook = tmp_path / "kernel.playbook.toml"
    runbook.write_text(_runbook("kernel killed", ["sleep 0.3"] * 8))
    node_ids = [f"step_{i:02d}" for i in range(8)]
    db = tmp_path / "state" / "runs.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "playbook_nb", "run", str(runbook), "--headless", "--state-path", str(db)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        kernel = _kernel_of(proc.pid)
        assert kernel is not None, "no ipykernel process found under the headless run"
        run_id = _wait_for_ok_nodes(db, 3, proc)
        kernel.send_signal(signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 3, (stdout, stderr)  # ABORTED
    assert "Traceback" not in stderr, stderr
    assert _integrity(db) == "ok"
    (run,) = [r for r in _runs(db) if r["id"] == run_id]
    assert run["status"] == "ABORTED", dict(run)
    assert "kernel" in (run["status_reason"] or "").lower(), run["status_reason"]
    assert all(a["status"] in ("OK", "INTERRUPTED") for a in _attempts(db, run_id))
    assert _broken_chains(db, run_id) == []

    # The partial executed notebook is filed with the run: the setup cell ran, the last node's cell did not.
    assert run["notebook_path"], dict(run)
    notebook = Path(run["notebook_path"])
    assert notebook.exists()
    nb = json.loads(notebook.read_text())
    node_cells = [
        c for c in nb["cells"] if c.get("metadata", {}).get("playbook_nb", {}).get("role") == "node"
    ]
    assert len(node_cells) == len(node_ids)
    assert node_cells[0].get("execution_count") is not None
    assert node_cells[-1].get("execution_count") is None

    result = run_cli("resume", str(runbook), str(run_id), "--state-path", str(db))
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr)
    _assert_finished_once_each(db, run_id, node_ids)


# --- the artifact directory unwritable ---------------------------------------------------------------------


def _can_mount() -> str | None:
    """None when tmpfs can be mounted here, else the reason why not."""
    if sys.platform != "linux":
        return "tmpfs mounts need Linux"
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    probe = Path(f"/tmp/playbook-nb-mount-probe-{uuid.uuid4().hex}")
    probe.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True, text=True
        )
        if result.returncode != 0:
            return f"mount -t tmpfs failed: {result.stderr.strip()}"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    except FileNotFoundError:
        return "no mount command"
    finally:
        probe.rmdir()


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module")
def mountable():
    reason = _can_mount()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to mount a tmpfs for these tests: {reason}")
        pytest.skip(reason)


QUICK = ["echo one", "echo two"]


def _check_index_after_failure(db: Path) -> None:
    assert _integrity(db) == "ok"
    runs = _runs(db)
    assert runs, "the run was never recorded"
    run = runs[-1]
    assert run["status"] in ("OK", "ABORTED"), dict(run)  # a final status, never left RUNNING
    assert _broken_chains(db, run["id"]) == []
    assert all(a["status"] == "OK" for a in _attempts(db, run["id"]))


@pytest.mark.parametrize("headless", [False, True], ids=["terminal", "headless"])
def test_artifacts_read_only(tmp_path, mountable, headless):
    runbook = tmp_path / "ro.playbook.toml"
    runbook.write_text(_runbook("read-only artifacts", QUICK))
    db = tmp_path / "state" / "runs.db"
    artifacts = tmp_path / "state" / "artifacts"
    with _tmpfs(artifacts, "size=64k,ro"):
        args = ["run", str(runbook), "--state-path", str(db)] + (["--headless"] if headless else [])
        result = run_cli(*args, env={"PLAYBOOK_ARTIFACTS_URL": str(artifacts)})
    assert result.returncode != 0, result.stdout
    line = _one_line_error(result.stderr)
    assert str(artifacts) in line and "read-only" in line.lower(), line
    _check_index_after_failure(db)


@pytest.mark.parametrize("headless", [False, True], ids=["terminal", "headless"])
def test_artifacts_out_of_space(tmp_path, mountable, headless):
    runbook = tmp_path / "full.playbook.toml"
    runbook.write_text(_runbook("full artifacts", QUICK))
    db = tmp_path / "state" / "runs.db"
    artifacts = tmp_path / "state" / "artifacts"
    with _tmpfs(artifacts, "size=64k,nr_inodes=8"):
        filler = artifacts / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        args = ["run", str(runbook), "--state-path", str(db)] + (["--headless"] if headless else [])
        result = run_cli(*args, env={"PLAYBOOK_ARTIFACTS_URL": str(artifacts)})
    if not headless and result.returncode == 0:
        # The terminal run writes no file into its artifact directory (only creates it): nothing can fail.
        _check_index_after_failure(db)
        return
    assert result.returncode != 0, result.stdout
    line = _one_line_error(result.stderr)
    assert "no space" in line.lower(), line
    _check_index_after_failure(db)


@pytest.mark.parametrize("headless", [False, True], ids=["terminal", "headless"])
def test_artifacts_root_is_a_file(tmp_path, headless):
    """No mount needed: an artifacts root that is a regular file makes every write fail (root or not)."""
    runbook = tmp_path / "file.playbook.toml"
    runbook.write_text(_runbook("artifacts root is a file", QUICK))
    db = tmp_path / "state" / "runs.db"
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the artifacts should go\n")
    args = ["run", str(runbook), "--state-path", str(db)] + (["--headless"] if headless else [])
    result = run_cli(*args, env={"PLAYBOOK_ARTIFACTS_URL": str(blocker)})
    assert result.returncode != 0, result.stdout
    line = _one_line_error(result.stderr)
    assert str(blocker) in line, line
    _check_index_after_failure(db)
