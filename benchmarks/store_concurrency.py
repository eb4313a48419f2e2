"""SQLite against PostgreSQL under concurrent writers: 8 processes x 200 runs at once into one run index.

Each run goes through `RunSession` (what every face uses): a 3-node runbook (two Python nodes and a Function
node, no shells spawned) run headless to the end, every engine event written as it happens (about 20
transactions per run: run row, node states, attempts, hash-chained events, snapshot). Half of each worker's
runs share one workflow with every other worker (they compete for run numbers); the other half use a
workflow of the worker's own.

Checked afterwards, through the Store API (the same code on both backends): runs present, runs OK, run ids
and (workflow, number) pairs distinct, numbers of each workflow exactly 1..N, attempts, event chains that
verify, and every error a worker saw; on SQLite also `PRAGMA integrity_check`.

PostgreSQL: a private server started for the benchmark (tests/pg_server.py; default settings, fsync on), or
the one `PLAYBOOK_TEST_PG_URL` names. SQLite: WAL, synchronous=NORMAL, as the store opens it.

    .venv/bin/python benchmarks/store_concurrency.py [--procs 8] [--runs 200] [--no-write]

Prints a table and writes benchmarks/results/store.md. `benchmarks/run_all` calls `run()` for its
"concurrent writers" figures (one row a backend).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

RUNBOOK = """
[runbook]
title = "{title}"
version = "1"

[variables]
ENV = "prod"

[first]
type = "Python"
code = "x = 1 + 1"

[second]
type = "Function"
plugin = "python"
function = "notify"
function_params = {{ message = "hello {{{{ ENV }}}}" }}

[third]
type = "Python"
code = "y = x * 2"
"""


def _worker(location: str, artifacts: str, worker: int, runs: int, barrier, results) -> None:
    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.domain.validation import parse_runbook

    errors: list[str] = []
    done = 0
    elapsed = 0.0
    try:
        shared = parse_runbook(RUNBOOK.format(title="shared"))
        mine = parse_runbook(RUNBOOK.format(title=f"worker-{worker}"))
        store = Store.open(location, artifacts_root=artifacts)
        barrier.wait()
        start = time.perf_counter()
        for i in range(runs):
            try:
                session = RunSession.start(
                    shared if i % 2 == 0 else mine,
                    {"ENV": "prod"},
                    store,
                    RunOptions(headless=True, actor="bench"),
                    executor=LocalExecutor(),
                )
                session.run_until_gate()
                session.close()
                done += 1
            except Exception as err:  # counted and reported, never hidden
                errors.append(f"{type(err).__name__}: {err}")
        elapsed = time.perf_counter() - start
        store.close()
    except Exception:
        errors.append(traceback.format_exc(limit=3))
    results.put((done, elapsed, errors))


def measure(name: str, location: str, artifacts: str, procs: int, runs: int) -> dict:
    from playbook_nb.adapters.store import Store

    Store.open(location, artifacts_root=artifacts).close()  # create and migrate once
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(location, artifacts, w, runs, barrier, results))
        for w in range(procs)
    ]
    for w in workers:
        w.start()
    barrier.wait()  # every worker has its connection open: start the clock together
    start = time.perf_counter()
    outcomes = [results.get(timeout=1800) for _ in workers]
    wall = time.perf_counter() - start
    for w in workers:
        w.join()
    errors = [e for _, _, errs in outcomes for e in errs]

    expected = procs * runs
    with Store.open(location, artifacts_root=artifacts) as store:
        all_runs = store.list_runs(limit=expected * 2)
        ids = [r.id for r in all_runs]
        pairs = Counter((r.workflow, r.number) for r in all_runs)
        by_workflow: dict[str, list[int]] = {}
        for r in all_runs:
            by_workflow.setdefault(r.workflow, []).append(r.number)
        numbering_ok = all(sorted(n) == list(range(1, len(n) + 1)) for n in by_workflow.values())
        ok = sum(r.status == "OK" for r in all_runs)
        attempts = sum(len(store.attempts(i)) for i in ids)
        events = sum(r.event_count for r in all_runs)
        broken = sum(1 for i in ids if store.verify_events(i))
        integrity = "ok"
        if store.backend == "sqlite":
            integrity = store.conn.execute("PRAGMA integrity_check").fetchone()[0]
    lost = expected - len(all_runs)
    duplicated = (len(ids) - len(set(ids))) + sum(n - 1 for n in pairs.values() if n > 1)
    return {
        "backend": name,
        "runs": len(all_runs),
        "expected": expected,
        "lost": lost,
        "duplicated": duplicated,
        "numbering_ok": numbering_ok,
        "ok": ok,
        "attempts": attempts,
        "events": events,
        "broken": broken,
        "integrity": integrity,
        "errors": errors,
        "wall": wall,
        "runs_per_s": len(all_runs) / wall if wall else 0.0,
        "events_per_s": events / wall if wall else 0.0,
        "passed": lost == 0
        and duplicated == 0
        and numbering_ok
        and not errors
        and ok == expected
        and attempts == 3 * expected
        and broken == 0
        and integrity == "ok",
    }


def measure_all(tmp: Path, procs: int, runs: int) -> tuple[list[dict], str]:
    """`measure` on SQLite, then on PostgreSQL with synchronous_commit on and off; and the server version."""
    from pg_server import pg_server

    artifacts = str(tmp / "artifacts")
    rows = [measure("SQLite (WAL)", str(tmp / "runs.db"), artifacts, procs, runs)]
    with pg_server() as server:
        url = server.create_database("bench")
        rows.append(measure("PostgreSQL (synchronous_commit=on)", url, artifacts, procs, runs))
        server.drop_database(url)
        # SQLite's synchronous=NORMAL does not fsync each commit either: the like-for-like setting
        url = server.create_database("bench")
        name = url.rsplit("/", 1)[1]
        with server.admin() as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
            version = conn.execute("SHOW server_version").fetchone()[0]
        rows.append(measure("PostgreSQL (synchronous_commit=off)", url, artifacts, procs, runs))
        server.drop_database(url)
    return rows, version


def run(quick: bool, workdir: Path, procs: int = 8) -> list:
    """The figures of `benchmarks/run_all`, one a backend: 8 processes x 200 runs (50 when quick)."""
    from bench_common import Row

    runs = 50 if quick else 200
    here = workdir / "concurrency"
    here.mkdir(parents=True, exist_ok=True)
    rows, _ = measure_all(here, procs, runs)
    out = []
    for r in rows:
        locked = sum("locked" in e for e in r["errors"])
        detail = (
            f"{r['runs']}/{r['expected']} runs, {r['ok']} OK, numbers 1..N per workflow: "
            f"{'yes' if r['numbering_ok'] else 'no'}, {r['attempts']} attempts, {r['broken']} broken event "
            f"chains, integrity_check {r['integrity']}, {r['wall']:.1f} s ({r['runs_per_s']:.0f} runs/s, {r['events_per_s']:.0f} events/s)"
        )
        if r["errors"]:
            detail += f"; first error: {r['errors'][0][:200]}"
        out.append(
            Row(
                f"{procs} processes x {runs} runs into one index: {r['backend']}",
                f"{r['lost']} lost, {r['duplicated']} duplicated, {locked} 'database is locked', "
                f"{len(r['errors'])} errors",
                f"{r['expected']} runs expected",
                "0 lost, 0 duplicated, 0 errors",
                r["passed"],
                detail,
            )
        )
    return out


def table(rows: list[dict], procs: int, runs: int) -> str:
    head = (
        "| backend | runs recorded | lost | duplicated | numbers 1..N per workflow | broken chains | errors "
        "| wall time | runs/s | events/s |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['backend']} | {r['runs']}/{r['expected']} ({r['ok']} OK) | {r['lost']} | {r['duplicated']} | "
        f"{'yes' if r['numbering_ok'] else '**no**'} | {r['broken']} | {len(r['errors'])} | {r['wall']:.1f} s | "
        f"{r['runs_per_s']:.0f} | {r['events_per_s']:.0f} |\n"
        for r in rows
    )
    return head + body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/store.md")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="playbook-nb-bench-") as tmp:
        rows, version = measure_all(Path(tmp), args.procs, args.runs)
    text = table(rows, args.procs, args.runs)
    print(f"{args.procs} processes x {args.runs} runs at once, through RunSession (3 nodes per run)\n")
    print(text)
    for r in rows:
        for e in r["errors"][:3]:
            print(f"{r['backend']} error: {e[:300]}")
    passed = all(r["passed"] for r in rows)
    print("zero lost or duplicated rows on both:", "yes" if passed else "NO")
    if not args.no_write:
        cpu = os.cpu_count()
        md = (
            "# Store concurrency: SQLite against PostgreSQL\n\n"
            f"`benchmarks/store_concurrency.py`: {args.procs} processes x {args.runs} runs at once into one run "
            "index, each run a 3-node runbook run headless to the end through `RunSession` (run row, node "
            "states, attempts, hash-chained events, snapshot: every event written as it happens). Half of the "
            "runs share one workflow across all processes, so run numbers are contended.\n\n"
            f"Machine: {platform.platform()}, {cpu} CPUs (1-minute load average {load:.1f} when it started: "
            f"other work shared the machine), Python {platform.python_version()}; "
            f"PostgreSQL {version} on the same machine over TCP loopback, default settings (fsync on), measured "
            "with synchronous_commit on (each commit flushed to disk) and off (the database setting that "
            "matches SQLite's synchronous=NORMAL: a crash may lose the last commits, never corrupts); "
            "SQLite in WAL mode with synchronous=NORMAL (as the store opens it).\n\n"
            + text
            + "\nCounted through the Store API after the run: run ids and (workflow, number) pairs distinct, each "
            "workflow numbered exactly 1..N, every run OK with 3 attempts, every event chain verified.\n\n"
            f"Result: zero lost or duplicated rows on both: {'yes' if passed else '**no**'}.\n"
        )
        out = REPO / "benchmarks" / "results" / "store.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md)
        print(f"wrote {out.relative_to(REPO)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
