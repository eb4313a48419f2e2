#!/usr/bin/env python3
"""The REST API under load (issue 16.6), with locust: a real Jupyter Server with the playbook-nb extension over
a SQLite index of 100,000 runs; 50 users list and read runs and 5 decide gates for 60 s. Target: p95 of each
endpoint under 200 ms, 0 errors. Also: what a run waiting at a gate costs in CPU.

    python benchmarks/api_load.py            # 100,000 runs, 60 s; writes results/api_load.md and its rows
                                             # in RESULTS.md
    python benchmarks/api_load.py --quick    # 10,000 runs, 20 s (a smoke test)
    benchmarks/run_all --only api            # the same, as one of run_all's benchmarks

Not part of CI (it needs `pip install locust` and a minute or two of both cores). How it works:

- The index: one real run recorded by RunSession, then copied in bulk (executemany, as bench_store does) to
  100,000 runs over 20 workflows, with their node states, attempts and events.
- The gates: each decider has its own keeper thread here, a real RunSession (headless, --gate-wait) that waits
  at its gate, takes the decision through the index, finishes, and starts the next run; so every decision
  is a real one and no two deciders race for a gate.
- The server: `jupyter server` in a process of its own, token auth, the index from PLAYBOOK_DB_PATH.
- locust in a process of its own (`--headless`, 55 users, CSV stats); a request name per endpoint.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_common import REPO, Row, machine  # noqa: E402

TOKEN = "bench-token-not-a-secret"
WORKFLOWS = 20
DECIDERS = 5
READERS = 50
TARGET_MS = 200.0
# the REST API only: JupyterLab and the other server extensions are not what is measured (and slow the start)
EXTENSIONS = {"playbook_nb.faces.server": True, "jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False,
              "jupyter_server_terminals": False}  # fmt: skip
ENDPOINTS = ("GET runs", "GET runs/{id}", "POST runs/{id}/gates/{node}")

TEMPLATE = """
[runbook]
title = "Service 0"

[build]
type = "Command"
command_name = "echo build"

[test]
type = "Command"
command_name = "echo test"

[ship]
type = "Command"
command_name = "echo ship"
"""

KEEPER = """
[runbook]
title = "Gate keeper {k}"

[gate]
type = "Manual"
prompt_after = "Go on?"

[after]
type = "Python"
code = "done = True"
"""


# --- the index -----------------------------------------------------------------------------------------


def seed_index(db: Path, runs: int) -> float:
    """A real recorded run, copied in bulk to `runs` runs; returns the seconds it took."""
    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.domain.validation import parse_runbook

    started = time.perf_counter()
    with Store.open(db) as store:
        session = RunSession.start(
            parse_runbook(TEMPLATE),
            {},
            store,
            RunOptions(headless=True, actor="bench"),
            executor=LocalExecutor(),
        )
        session.drive(lambda *a: None)
        session.close()
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    tables = {"runs": [dict(r) for r in conn.execute("SELECT * FROM runs WHERE id = 1")]}
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in sorted(names):
        columns_of = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
        if "run_id" in columns_of and table != "gate_waits":  # every table holding a run's rows
            rows = [dict(r) for r in conn.execute(f"SELECT * FROM {table} WHERE run_id = 1")]
            if rows:
                tables[table] = rows
    base = datetime.now(UTC) - timedelta(days=400)
    rng = random.Random(7)
    numbers: dict[str, int] = {"Service 0": 1}
    batch: dict[str, list[tuple]] = {t: [] for t in tables}
    columns = {t: [c for c in tables[t][0] if not (t != "runs" and c == "id")] for t in tables}  # new ids

    def flush() -> None:
        conn.execute("BEGIN")
        for table, rows in batch.items():
            if rows:
                cols = columns[table]
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", rows
                )
                rows.clear()
        conn.execute("COMMIT")

    for run_id in range(2, runs + 1):
        workflow = f"Service {run_id % WORKFLOWS}"
        numbers[workflow] = numbers.get(workflow, 0) + 1
        status = rng.choices(["OK", "NOK", "ABORTED"], weights=[85, 10, 5])[0]
        when = (base + timedelta(seconds=run_id * 300)).isoformat(timespec="microseconds")
        for table, rows in tables.items():
            for row in rows:
                row = dict(row)
                if table == "runs":
                    row.update(id=run_id, workflow=workflow, title=workflow, number=numbers[workflow],
                               status=status, started_at=when, ended_at=when, artifact_dir=None,
                               notebook_path=None)  # fmt: skip
                else:
                    row["run_id"] = run_id
                batch[table].append(tuple(row[c] for c in columns[table]))
        if run_id % 5000 == 0:
            flush()
    flush()
    conn.close()
    return time.perf_counter() - started


# --- the keepers: real runs waiting at their gates -------------------------------------------------------


class Keeper(threading.Thread):
    """Keeps one run of 'Gate keeper K' waiting at its gate, run after run, until stopped."""

    def __init__(self, db: Path, k: int):
        super().__init__(name=f"keeper-{k}", daemon=True)
        self.db, self.k = db, k
        self.stopping = threading.Event()
        self.session = None
        self.decided = 0
        self.errors: list[str] = []

    def run(self) -> None:
        from playbook_nb.adapters.executors.local import LocalExecutor
        from playbook_nb.adapters.store import Store
        from playbook_nb.app.session import RunOptions, RunSession
        from playbook_nb.domain.validation import parse_runbook

        runbook = parse_runbook(KEEPER.format(k=self.k))
        with Store.open(self.db) as store:
            while not self.stopping.is_set():
                try:
                    options = RunOptions(headless=True, actor=f"keeper-{self.k}", gate_wait=600)
                    self.session = RunSession.start(runbook, {}, store, options, executor=LocalExecutor())
                    self.session.drive(
                        lambda s, node, kind: s.unattended_decision(node) if kind == "gate" else None
                    )
                    self.session.close()
                    if str(self.session.status) == "OK":
                        self.decided += 1
                except Exception as err:
                    self.errors.append(f"{type(err).__name__}: {err}")
                    time.sleep(0.5)

    def stop(self) -> None:
        self.stopping.set()
        if self.session is not None:
            self.session.abort_switch.request("load test over")
        self.join(timeout=10)


# --- the server and locust ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, workdir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PLAYBOOK_DB_PATH": str(db), "PLAYBOOK_ARTIFACTS_URL": str(workdir / "artifacts")}
    log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={workdir}",
         f"--ServerApp.jpserver_extensions={EXTENSIONS}", "--ServerApp.log_level=WARN", "--allow-root"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/playbook-nb/api/me", headers={"Authorization": f"token {TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError(f"the Jupyter server did not answer; see {workdir / 'server.log'}")


def run_locust(port: int, workdir: Path, runs: int, seconds: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PLAYBOOK_BENCH_TOKEN": TOKEN, "PLAYBOOK_BENCH_RUNS": str(runs),
           "PLAYBOOK_BENCH_WORKFLOWS": str(WORKFLOWS), "PLAYBOOK_BENCH_DECIDERS": str(DECIDERS)}  # fmt: skip
    prefix = workdir / "locust"
    with open(workdir / "locust.log", "w") as log:
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(HERE / "locust_api.py"), "--headless",
             "-u", str(READERS + DECIDERS), "-r", str(READERS + DECIDERS), "-t", f"{seconds}s",
             "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary",
             "--loglevel", "WARNING"],
            env=env, cwd=workdir, check=False, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    stats = {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            stats[row["Name"]] = {
                "count": float(row["Request Count"]),
                "failures": float(row["Failure Count"]),
                "median": float(row["Median Response Time"] or "nan"),
                "p95": float(row["95%"] or "nan"),
                "rps": float(row["Requests/s"] or 0),
            }
    return stats


# --- what waiting costs ---------------------------------------------------------------------------------


def waiting_cpu(workdir: Path) -> tuple[float, float]:
    """CPU seconds of a terminal run that waits 1 s at its gate and of one that waits 11 s (both time out)."""
    book = workdir / "wait.playbook.toml"
    book.write_text(KEEPER.format(k="cpu"))
    used = []
    for wait in ("1s", "11s"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, "-m", "playbook_nb", "run", str(book), "--gate-wait", wait,
             "--state-path", str(workdir / "wait.db")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return used[0], used[1]


# --- the benchmark --------------------------------------------------------------------------------------


def run(quick: bool, workdir: Path) -> list[Row]:
    """benchmarks/run_all entry point."""
    runs, seconds = (10_000, 20) if quick else (100_000, 60)
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "api.db"
    seeded = seed_index(db, runs)
    keepers = [Keeper(db, k) for k in range(DECIDERS)]
    for keeper in keepers:
        keeper.start()
    port = free_port()
    server = start_server(db, workdir, port)
    try:
        stats = run_locust(port, workdir, runs, seconds)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        for keeper in keepers:
            keeper.stop()
    rows = []
    users = f"{READERS} readers + {DECIDERS} deciders, {seconds} s, {runs:,} runs in the index (seeded in {seeded:.0f} s)"
    for name in ENDPOINTS:
        figure = stats.get(name)
        if figure is None:
            rows.append(
                Row(
                    f"REST API `{name}` under load",
                    "no requests",
                    users,
                    f"p95 < {TARGET_MS:.0f} ms, 0 errors",
                    False,
                )
            )
            continue
        met = figure["p95"] < TARGET_MS and figure["failures"] == 0
        rows.append(
            Row(
                f"REST API `{name}` under load (locust)",
                f"p95 {figure['p95']:.0f} ms, median {figure['median']:.0f} ms, {figure['failures']:.0f} errors",
                users,
                f"p95 < {TARGET_MS:.0f} ms, 0 errors",
                met,
                f"{figure['count']:.0f} requests ({figure['rps']:.1f}/s)",
            )
        )
    decided = sum(k.decided for k in keepers)
    keeper_errors = [e for k in keepers for e in k.errors]
    rows.append(
        Row(
            "gates decided through the API during the load test",
            f"{decided} decisions taken by waiting runs",
            f"{DECIDERS} keepers",
            "",
            None if not keeper_errors else False,
            "; ".join(keeper_errors)[:200],
        )
    )
    short, long = waiting_cpu(workdir)
    rows.append(
        Row(
            "CPU of a run waiting 10 s longer at its gate (SQLite poll)",
            f"{(long - short) * 1000:.0f} ms of CPU for 10 s of waiting",
            f"the whole run waiting 1 s: {short:.2f} s of CPU",
            "",
            None,
            f"run waiting 11 s: {long:.2f} s of CPU",
        )
    )
    return rows


def table(rows: list[Row]) -> str:
    """The figures table as benchmarks/run_all writes it."""
    header = ["measure", "result", "baseline (same run)", "target", "met", "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r.measure, r.value, r.baseline, r.target or "-", r.verdict, r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def write_results(rows: list[Row], quick: bool, elapsed: float) -> None:
    info = machine()
    info["load average"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [
            "# REST API under load (locust)",
            "",
            f"`python benchmarks/api_load.py{' --quick' if quick else ''}` on {when} ({elapsed:.0f} s)",
            "",
            *[f"- {k}: {v}" for k, v in info.items()],
            "",
            table(rows),
            "",
        ]
    )
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "api_load.md").write_text(text)
    results = HERE / "RESULTS.md"
    if results.exists() and not quick:  # replace (or add) these rows at the end of the figures table
        load = info["load average"].split()[0]
        for r in rows:
            r.note = (
                f"{r.note}; measured by `benchmarks/api_load.py` alone on {when}, load average {load}".lstrip(
                    "; "
                )
            )
        new = table(rows).splitlines()[2:]
        lines = [
            line for line in results.read_text().splitlines()
            if not any(line.startswith(f"| {r.measure} |") for r in rows)
        ]  # fmt: skip
        at = next((i for i, line in enumerate(lines) if line.startswith("## Time per benchmark")), len(lines))
        while at > 0 and not lines[at - 1].startswith("|"):
            at -= 1
        results.write_text("\n".join(lines[:at] + new + lines[at:]) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    import shutil
    import tempfile

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="playbook-nb-api-"))
    started = time.monotonic()
    try:
        rows = run(args.quick, workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    for r in rows:
        print(
            f"{'ok  ' if r.met else 'MISS' if r.met is False else '    '} {r.measure}: {r.value} [{r.note}]"
        )
    write_results(rows, args.quick, elapsed)
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    sys.exit(main())
