"""Abort means stop now (issue 13 point 4, issue 14 points 6 and 14, issue 24 points 1 and 6), through the real
CLI and real papermill: SIGTERM / SIGINT to the terminal runner, to `run --headless` and to a plain `papermill`
run stop the running command's whole process group within 2 s (measured from /proc), the attempt is
INTERRUPTED, the node PENDING with the reason (never RUNNING in a finished run), the run ABORTED and
resumable, and the notebook filed; `kill -9` of the runner, of the papermill process or of the kernel leaves
no command behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from abort_helpers import (
    kill_all,
    long_runbook,
    pids_with,
    rows,
    seconds_until_gone,
    start_cli,
    wait_for,
)
from conftest import run_cli

pytestmark = pytest.mark.slow


def _assert_interrupted_record(db: Path, run_id: int, reason_part: str, attempt: int = 1) -> None:
    (run,) = rows(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    assert run["status"] == "ABORTED", dict(run)
    states = {r["node_id"]: (r["state"], r["reason"]) for r in rows(db, "SELECT * FROM node_states")}
    assert states["first"][0] == "OK"
    assert states["slow"][0] == "PENDING", states
    assert states["slow"][1].startswith(f"interrupted: attempt {attempt} stopped"), states
    assert reason_part in states["slow"][1], states
    assert states["last"] == ("PENDING", None)
    attempts = {(a["node_id"], a["attempt"]): a for a in rows(db, "SELECT * FROM attempts")}
    assert attempts[("slow", attempt)]["status"] == "INTERRUPTED"
    assert attempts[("slow", attempt)]["ended_at"] is not None
    assert "RUNNING" not in {r["state"] for r in rows(db, "SELECT state FROM node_states")}


def _resume_finishes(runbook: Path, flag: Path, db: Path, run_id: int) -> None:
    flag.write_text("")
    done = run_cli("resume", str(runbook), str(run_id), "--state-path", str(db))
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr)
    states = {
        r["node_id"]: r["state"] for r in rows(db, "SELECT * FROM node_states WHERE run_id = ?", (run_id,))
    }
    assert states == {"first": "OK", "slow": "OK", "last": "OK"}
    first = [a for a in rows(db, "SELECT * FROM attempts WHERE node_id = 'first'")]
    assert len(first) == 1  # the finished node did not run again


def _running_slow(db: Path, marker: str):
    def check():
        if not db.exists() or not pids_with(marker):
            return None
        running = rows(db, "SELECT run_id FROM attempts WHERE node_id = 'slow' AND status = 'RUNNING'")
        return running[0]["run_id"] if running else None

    return check


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_terminal_signal_stops_the_group_and_aborts_the_run(tmp_path, sig):
    runbook, marker, flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    proc = start_cli("run", str(runbook), "--state-path", str(db))
    try:
        run_id = wait_for(_running_slow(db, marker), what="the slow command", proc=proc)
        assert len(pids_with(marker)) >= 3  # the shell, its child shell and the sleeps
        proc.send_signal(sig)
        lived = seconds_until_gone(marker)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        kill_all(marker)
    assert lived < 2.0, f"the command lived on {lived:.2f}s after {sig.name}"
    assert proc.returncode == 3, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert "ABORTED" in stdout
    _assert_interrupted_record(db, run_id, "SIGTERM" if sig == signal.SIGTERM else "SIGINT")
    _resume_finishes(runbook, flag, db, run_id)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_headless_signal_stops_the_group_files_the_notebook_and_exits_3(tmp_path, sig):
    runbook, marker, flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    proc = start_cli("run", str(runbook), "--headless", "--state-path", str(db))
    try:
        run_id = wait_for(_running_slow(db, marker), what="the slow command", proc=proc)
        proc.send_signal(sig)
        lived = seconds_until_gone(marker)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        proc.kill()
        kill_all(marker)
    assert lived < 2.0, f"the command lived on {lived:.2f}s after {sig.name}"
    assert proc.returncode == 3, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert stopped and sig.name in stopped[0], stderr
    # the signal the runner was sent, not the SIGINT it gave its kernel
    _assert_interrupted_record(db, run_id, sig.name)
    (run,) = rows(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    assert sig.name in run["status_reason"], dict(run)
    notebook = Path(run["notebook_path"])
    assert notebook.exists() and notebook.is_relative_to(tmp_path), run["notebook_path"]
    nb = json.loads(notebook.read_text())
    slow_cell = [c for c in nb["cells"] if c["source"] and "playbook_node slow" in "".join(c["source"])]
    assert slow_cell and slow_cell[0]["execution_count"] is not None
    text = json.dumps(slow_cell[0]["outputs"])
    assert "interrupted" in text, text
    _resume_finishes(runbook, flag, db, run_id)


def _compiled(tmp_path: Path, runbook: Path) -> Path:
    notebook = tmp_path / "abort.ipynb"
    assert run_cli("compile", str(runbook), "-o", str(notebook)).returncode == 0
    return notebook


def _start_papermill(tmp_path: Path, notebook: Path, db: Path, output=subprocess.PIPE) -> subprocess.Popen:
    """A plain `papermill IN OUT` of the compiled notebook, its run recorded in `db`."""
    env = {**os.environ, "PLAYBOOK_DB_PATH": str(db), "PYTHONUNBUFFERED": "1"}
    papermill = Path(sys.executable).with_name("papermill")
    return subprocess.Popen(
        [str(papermill), str(notebook), str(tmp_path / "out.ipynb")],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def _wait_run_left_running(db: Path, run_id: int) -> None:
    """The record is written by the kernel as it stops; give it the moment it needs."""
    wait_for(lambda: rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]["status"] != "RUNNING",
             timeout=20, what="the run to leave RUNNING")  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_plain_papermill_signal_stops_the_group_and_aborts_the_run(tmp_path, sig):
    runbook, marker, flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    proc = _start_papermill(tmp_path, _compiled(tmp_path, runbook), db)
    try:
        run_id = wait_for(_running_slow(db, marker), what="the slow command", proc=proc)
        proc.send_signal(sig)
        lived = seconds_until_gone(marker)
        proc.communicate(timeout=90)
        _wait_run_left_running(db, run_id)
    finally:
        proc.kill()
        kill_all(marker)
    assert lived < 2.0, f"the command lived on {lived:.2f}s after {sig.name} to papermill"
    reason = "driver" if sig == signal.SIGTERM else "SIGINT"
    _assert_interrupted_record(db, run_id, "")
    (run,) = rows(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    assert reason in run["status_reason"] or "shut down" in run["status_reason"], run["status_reason"]
    assert (tmp_path / "out.ipynb").exists()  # papermill's own output notebook, as far as it got
    _resume_finishes(runbook, flag, db, run_id)


def _kernel_pid(parent: int) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rfind(b")") + 2 :].split()[1]) == parent and b"ipykernel" in cmdline:
                return int(entry)
    return None


@pytest.mark.parametrize("victim", ["terminal runner", "headless runner", "kernel"])
def test_kill_9_of_the_driver_leaves_no_command_behind(tmp_path, victim):
    runbook, marker, _flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    args = ["run", str(runbook), "--state-path", str(db)] + (
        ["--headless"] if victim != "terminal runner" else []
    )
    proc = start_cli(*args)
    try:
        wait_for(_running_slow(db, marker), what="the slow command", proc=proc)
        target = proc.pid if victim != "kernel" else _kernel_pid(proc.pid)
        assert target
        os.kill(target, signal.SIGKILL)
        lived = seconds_until_gone(marker)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
        kill_all(marker)
    assert lived < 2.0, f"the command outlived the {victim} by {lived:.2f}s"


@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_closed_output_pipe_aborts_the_run_and_stops_the_command(tmp_path, command):
    """`playbook-nb run ... | head -1` (issue 14 point 6): the reader goes away while a silent command runs;
    its process group is stopped at once, the run ends ABORTED (resumable), exit 3 with one line on stderr."""
    runbook, marker, flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    run_id = None
    if command == "resume":  # a first run stopped at the slow node, then resumed into the closing pipe
        first = start_cli("run", str(runbook), "--state-path", str(db))
        run_id = wait_for(_running_slow(db, marker), what="the slow command", proc=first)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
        args = ["resume", str(runbook), str(run_id), "--state-path", str(db)]
    else:
        args = ["run", str(runbook), "--state-path", str(db)]
    proc = start_cli(*args)
    try:
        found = wait_for(_running_slow(db, marker), what="the slow command", proc=proc)
        run_id = run_id or found
        proc.stdout.close()  # the reader goes away, as `head -1` does
        lived = seconds_until_gone(marker)
        stderr = proc.stderr.read()
        proc.wait(60)
    finally:
        proc.kill()
        kill_all(marker)
    assert lived < 2.0, f"the command lived on {lived:.2f}s after the pipe closed"
    assert proc.returncode == 3, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "output pipe was closed" in errors[0], stderr
    assert "Traceback" not in stderr
    _assert_interrupted_record(db, run_id, "output pipe was closed", attempt=2 if command == "resume" else 1)
    _resume_finishes(runbook, flag, db, run_id)


def test_a_kernel_slow_to_see_its_driver_go_still_records_the_run(tmp_path):
    """A kernel that wakes to its driver's death (stopped, or starved on a loaded machine, while papermill
    died) records the run ABORTED before ipykernel's parent poller ends it: the poller is held until the
    record is written."""
    runbook, marker, flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    proc = _start_papermill(tmp_path, _compiled(tmp_path, runbook), db, output=subprocess.DEVNULL)
    kernel = None
    try:
        run_id = wait_for(_running_slow(db, marker), what="the slow command", proc=proc)
        kernel = _kernel_pid(proc.pid)
        assert kernel
        os.kill(kernel, signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        time.sleep(1.5)  # more than the poller's one-second tick: it sees the new parent as soon as it wakes
        os.kill(kernel, signal.SIGCONT)
        _wait_run_left_running(db, run_id)
    finally:
        if kernel:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel, signal.SIGCONT)
        proc.kill()
        kill_all(marker)
    _assert_interrupted_record(db, run_id, "")
    (run,) = rows(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    assert f"the kernel's driver (process {proc.pid}) ended" in run["status_reason"], run["status_reason"]
    _resume_finishes(runbook, flag, db, run_id)


def _ended(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].startswith(b"Z")


DRIVER = """
import sys, time, nbformat
from jupyter_client.manager import KernelManager

notebook = nbformat.read(sys.argv[1], as_version=4)
manager = KernelManager(kernel_name="python3")
manager.start_kernel(cwd=sys.argv[2])
client = manager.client()
client.start_channels()
client.wait_for_ready(timeout=60)
for cell in notebook.cells:
    if cell.cell_type != "code":
        continue
    reply = client.execute_interactive(cell.source, timeout=60, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]
    if "open_run(" in cell.source:
        break
print("ready", manager.provisioner.process.pid, flush=True)
time.sleep(600)
"""


def test_a_run_open_in_an_idle_kernel_is_recorded_when_its_driver_dies(tmp_path):
    """A driver killed -9 while its kernel is idle between cells (nothing running, nobody to write the
    record): the kernel records the run ABORTED on its own event loop before it ends; resume finishes it."""
    runbook, marker, flag = long_runbook(tmp_path)
    db = tmp_path / "runs.db"
    notebook = _compiled(tmp_path, runbook)
    env = {**os.environ, "PLAYBOOK_DB_PATH": str(db), "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(notebook), str(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    kernel = None
    try:
        line = driver.stdout.readline() if driver.stdout else ""
        assert line.startswith("ready"), (line, driver.stderr.read() if driver.poll() is not None else "")
        kernel = int(line.split()[1])
        (run,) = rows(db, "SELECT * FROM runs")
        assert run["status"] == "RUNNING"
        driver.kill()
        driver.wait(timeout=10)
        _wait_run_left_running(db, run["id"])
        wait_for(lambda: _ended(kernel), timeout=30, what="the kernel to end (its poller released)")
    finally:
        driver.kill()
        if kernel:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kernel, signal.SIGKILL)
    (ended,) = rows(db, "SELECT * FROM runs")
    assert ended["status"] == "ABORTED", dict(ended)
    assert f"the kernel's driver (process {driver.pid}) ended" in ended["status_reason"]
    states = {r["node_id"]: r["state"] for r in rows(db, "SELECT * FROM node_states")}
    assert set(states.values()) <= {"PENDING"}, states
    _resume_finishes(runbook, flag, db, run["id"])


def test_an_interrupted_kernel_gives_the_reason_its_driver_wrote(tmp_path, monkeypatch):
    from playbook_nb.constants import STOP_REASON_FILE_ENV
    from playbook_nb.kernel_ext.notebook_run import interrupt_reason

    monkeypatch.delenv(STOP_REASON_FILE_ENV, raising=False)
    assert interrupt_reason(signal.SIGINT) == "interrupted (SIGINT)"  # Kernel > Interrupt in JupyterLab
    note = tmp_path / "stop-reason"
    monkeypatch.setenv(STOP_REASON_FILE_ENV, str(note))
    assert interrupt_reason(signal.SIGINT) == "interrupted (SIGINT)"  # a driver that has not stopped
    note.write_text("terminated (SIGTERM)")
    assert interrupt_reason(signal.SIGINT) == "terminated (SIGTERM)"
