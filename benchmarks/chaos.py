#!/usr/bin/env python3
"""Chaos: runs of a chain of short commands cut with SIGKILL at chosen points, then resumed.

Each trial starts a run of an N-node chain (terminal or headless face) and kills the process that drives it,
at a point chosen by what is observed, never by a guessed delay:

- `command`: while node k's command runs (its processes seen in /proc, its attempt RUNNING in the index);
- `record`: after node k's command ended and before anything of it is recorded (`PLAYBOOK_NB_FAULT=after-command:
  step_k`: the driver kills itself there);
- `save` (headless): in the middle of the kth notebook save (`PLAYBOOK_NB_FAULT=during-save:k`: half the
  notebook is written, then SIGKILL).

Then: no process of the run may be left after 2 s (commands die with their driver), the index passes
`PRAGMA integrity_check`, the run is `resume`d to the end with a plain resume (an orphaned RUNNING run is
recovered by it: its owner is gone), and every node must be OK exactly once (no node run twice), the event
chain intact.

    python benchmarks/chaos.py [--trials 12] [--seed 7]    # writes benchmarks/results/chaos.md
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_common import Row  # noqa: E402

from playbook_nb.adapters.store.owner import process_alive, process_start  # noqa: E402

CLI = [sys.executable, "-m", "playbook_nb"]
KINDS = {"terminal": ("command", "record"), "headless": ("command", "record", "save")}


@dataclass
class Trial:
    face: str
    kind: str
    node: int
    recovered: bool = False
    orphans: int = 0  # processes of the run still alive 2 s after the kill
    doubled: int = 0  # nodes with more than one finished (not interrupted) OK attempt
    detail: str = ""

    @property
    def name(self) -> str:
        return f"{self.face}/{self.kind}@step_{self.node:02d}"


def chain_runbook(directory: Path, nodes: int, marker: str) -> Path:
    """A chain of short commands; each carries `marker` (so /proc shows what belongs to the run)."""
    parts = [
        "[runbook]",
        'title = "chaos chain"',
        'description = "cut with SIGKILL and resumed"',
        'version = "1"',
        'author = "chaos"',
        'created_at = "2025-01-01T00:00:00Z"',
        "",
    ]
    for i in range(nodes):
        parts += [
            f"[step_{i:02d}]",
            'type = "Command"',
            f'command_name = "sleep {marker}{i}; echo step {i}"',
            "",
        ]
    path = directory / "chaos.playbook.toml"
    path.write_text("\n".join(parts))
    return path


def _owner_alive(db: Path) -> bool:
    """Whether the process that owns the newest run (its kernel for a headless run) still runs."""
    if not db.exists():
        return False
    rows = _rows(db, "SELECT owner_pid, owner_pid_start FROM runs ORDER BY id DESC LIMIT 1")
    return bool(rows) and process_alive(rows[0]["owner_pid"], rows[0]["owner_pid_start"])


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and process_start(int(entry)) is not None:  # not gone, not a zombie
            found.append(int(entry))
    return found


def _rows(db: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
    )


def _wait(predicate, proc: subprocess.Popen, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


def run_trial(workdir: Path, face: str, kind: str, node: int, nodes: int = 6) -> Trial:
    trial = Trial(face, kind, node)
    marker = f"0.{uuid.uuid4().int % 10**5:05d}"  # sleeps of 0.0xxxx s: short, and unique to this trial
    directory = workdir / f"{face}-{kind}-{node}-{uuid.uuid4().hex[:6]}"
    directory.mkdir(parents=True)
    runbook = chain_runbook(directory, nodes, marker)
    db = directory / "runs.db"
    if not _cut(trial, runbook, db, marker):
        return trial
    if not db.exists() or not _rows(db, "SELECT id FROM runs"):
        trial.detail = "killed before the run was recorded"
        trial.recovered = True
        return trial
    _recover(trial, runbook, db)
    return trial


def _cut(trial: Trial, runbook: Path, db: Path, marker: str) -> bool:
    """Start the run and kill its driver at the trial's point; count what outlives it. False if the point
    was never reached."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    node_id = f"step_{trial.node:02d}"
    long_marker = f"3{marker[1:]}{trial.node}"
    if trial.kind == "record":
        env["PLAYBOOK_NB_FAULT"] = f"after-command:{node_id}"
    elif trial.kind == "save":
        env["PLAYBOOK_NB_FAULT"] = f"during-save:{trial.node}"
    else:  # a longer sleep for node k, so it is surely seen running
        runbook.write_text(
            runbook.read_text().replace(f"sleep {marker}{trial.node};", f"sleep {long_marker};")
        )
    args = ["run", str(runbook), "--state-path", str(db)] + (
        ["--headless"] if trial.face == "headless" else []
    )
    proc = subprocess.Popen([*CLI, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    mark = marker[1:]  # in every command of the run, the longer sleep of `command` trials too
    try:
        if trial.kind == "command":
            sql = "SELECT 1 FROM attempts WHERE node_id = ? AND status = 'RUNNING'"
            running = lambda: db.exists() and _pids_with(long_marker) and _rows(db, sql, (node_id,))  # noqa: E731
            if not _wait(running, proc):
                trial.detail = f"node {trial.node} never seen running (exit {proc.poll()})"
                return False
            proc.send_signal(signal.SIGKILL)
        proc.wait(300)  # `record` and `save`: the driver kills itself at the armed point
        deadline = time.monotonic() + 2.0
        while _pids_with(mark) and time.monotonic() < deadline:
            time.sleep(0.02)
        trial.orphans = len(_pids_with(mark))
        # A headless run's owner is its kernel: it notices its driver's death by polling its parent (about
        # once a second, later on a loaded machine) and must then be gone too, or it is an orphan that
        # still holds the run.
        deadline = time.monotonic() + 10.0
        while _owner_alive(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _owner_alive(db):
            trial.orphans += 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _pids_with(mark):
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
    return True


def _recover(trial: Trial, runbook: Path, db: Path) -> None:
    """Resume the run (a plain resume recovers an orphaned RUNNING one), and check it ended as it should."""
    (integrity,) = _rows(db, "PRAGMA integrity_check")[0]
    if integrity != "ok":
        trial.detail = f"integrity_check: {integrity}"
        return
    run_id = _rows(db, "SELECT id FROM runs ORDER BY id DESC LIMIT 1")[0]["id"]
    status = _rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]["status"]
    steps = []
    if status != "OK":
        steps.append(("resume", str(runbook), str(run_id), "--state-path", str(db)))
    for step in steps:
        done = _cli(*step)
        if done.returncode != 0:
            trial.detail = f"{step[0]} exit {done.returncode}: {done.stderr.strip()[-300:]}"
            return
    _check_recovered(trial, db, run_id)


def _check_recovered(trial: Trial, db: Path, run_id: int) -> None:
    from playbook_nb.adapters.store import Store

    states = {
        r["node_id"]: r["state"] for r in _rows(db, "SELECT * FROM node_states WHERE run_id = ?", (run_id,))
    }
    run = _rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]
    attempts = _rows(db, "SELECT node_id, status FROM attempts WHERE run_id = ?", (run_id,))
    ok_counts: dict[str, int] = {}
    for a in attempts:
        if a["status"] == "OK":
            ok_counts[a["node_id"]] = ok_counts.get(a["node_id"], 0) + 1
    trial.doubled = sum(1 for n in ok_counts.values() if n > 1)
    with Store.open(db) as store:
        broken = store.verify_events(run_id)
    trial.recovered = (
        run["status"] == "OK"
        and set(states.values()) == {"OK"}
        and all(ok_counts.get(n) == 1 for n in states)
        and not broken
        and not any(a["status"] == "RUNNING" for a in attempts)
    )
    if not trial.recovered:
        trial.detail = json.dumps({"run": run["status"], "states": states, "ok": ok_counts, "broken": broken})


def plan(trials: int, seed: int, nodes: int = 6) -> list[tuple[str, str, int]]:
    """Trials spread over every face and kind, the node chosen at random (seeded)."""
    rng = random.Random(seed)
    kinds = [(face, kind) for face, kinds in KINDS.items() for kind in kinds]
    chosen = []
    for i in range(trials):
        face, kind = kinds[i % len(kinds)]
        node = rng.randrange(1, nodes - 1) if kind != "save" else rng.randrange(9, 3 * nodes)
        chosen.append((face, kind, node))
    return chosen


def summary(results: list[Trial]) -> str:
    recovered = sum(t.recovered for t in results)
    orphans = sum(t.orphans for t in results)
    doubled = sum(t.doubled for t in results)
    return f"{recovered}/{len(results)} recovered, {orphans} orphans, {doubled} doubled nodes"


def run(quick: bool, workdir: Path) -> list[Row]:
    """benchmarks/run_all entry point."""
    results = [run_trial(workdir, *t) for t in plan(5 if quick else 10, seed=7)]
    line = summary(results)
    failed = [f"{t.name}: {t.detail}" for t in results if not t.recovered or t.orphans or t.doubled]
    met = not failed
    return [Row("chaos: SIGKILL at chosen points, then resume", line, f"{len(results)} trials", "all recovered, 0 orphans, 0 doubled", met, "; ".join(failed)[:300])]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="playbook-nb-chaos-") as tmp:
        started = time.monotonic()
        results = [run_trial(Path(tmp), *t) for t in plan(args.trials, args.seed)]
        elapsed = time.monotonic() - started
    lines = [
        "# Chaos: SIGKILL at chosen points, then resume",
        "",
        f"`python benchmarks/chaos.py --trials {args.trials} --seed {args.seed}` ({elapsed:.0f} s)",
        "",
        f"**{summary(results)}**",
        "",
        "| trial | recovered | orphans | doubled | detail |",
        "|---|---|---|---|---|",
        *(
            f"| {t.name} | {'yes' if t.recovered else '**no**'} | {t.orphans} | {t.doubled} | {t.detail} |"
            for t in results
        ),
    ]
    out = HERE / "results" / "chaos.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(t.recovered and not t.orphans and not t.doubled for t in results) else 1


if __name__ == "__main__":
    sys.exit(main())
