"""8 processes each recording 200 runs at once into one SQLite index, through `RunSession` (the code path
every face uses): a 3-node runbook (two Python nodes and a Function node, so no time goes to spawning
shells) run headless to the end, every event written as it happens.

Counted afterwards: runs present (expected 8 x 200), runs OK, distinct (workflow, number) pairs (run
numbers are allocated inside the write transaction), attempts, events whose hash chain verifies, and every
error a worker saw, "database is locked" in particular.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from pathlib import Path

from bench_common import Row

RUNBOOK = """
[runbook]
title = "concurrency"
description = "three quick nodes"
version = "1"
author = "bench"
created_at = "2025-01-01T00:00:00Z"

[variables]
ENV = "prod"

[first]
type = "Python"
code = "x = 1 + 1"

[second]
type = "Function"
plugin = "python"
function = "notify"
function_params = { message = "hello {{ ENV }}" }

[third]
type = "Python"
code = "y = x * 2"
"""


def _worker(db: str, runs: int, barrier, results) -> None:
    from playbook_nb.model import parse_runbook
    from playbook_nb.session import RunOptions, RunSession
    from playbook_nb.store import Store

    errors: list[str] = []
    done = 0
    try:
        runbook = parse_runbook(RUNBOOK)
        store = Store.open(db)
        barrier.wait()
        for _ in range(runs):
            try:
                session = RunSession.start(
                    runbook, {"ENV": "prod"}, store, RunOptions(headless=True, actor="bench")
                )
                session.run_until_gate()
                session.close()
                done += 1
            except Exception as err:  # noqa: BLE001 - counted and reported, never hidden
                errors.append(f"{type(err).__name__}: {err}")
        store.close()
    except Exception:  # noqa: BLE001
        errors.append(traceback.format_exc(limit=3))
    results.put((done, errors))


def run(quick: bool, workdir: Path, procs: int = 8, runs: int = 200) -> list[Row]:
    from playbook_nb.store import Store

    if quick:
        runs = 50
    db = workdir / "concurrency" / "runs.db"
    Store.open(db).close()  # create and migrate once
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(db), runs, barrier, results)) for _ in range(procs)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    finished = sum(d for d, _ in outcomes)
    errors = [e for _, errs in outcomes for e in errs]
    locked = sum("locked" in e for e in errors)

    with Store.open(db) as store:
        conn = store.conn
        (count,) = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
        (ok,) = conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'OK'").fetchone()
        (numbers,) = conn.execute("SELECT COUNT(DISTINCT number) FROM runs").fetchone()
        (max_number,) = conn.execute("SELECT MAX(number) FROM runs").fetchone()
        (attempts,) = conn.execute("SELECT COUNT(*) FROM attempts WHERE status = 'OK'").fetchone()
        ids = [r[0] for r in conn.execute("SELECT id FROM runs")]
        broken = sum(1 for run_id in ids if store.verify_events(run_id))
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
    expected = procs * runs
    lost = expected - count
    met = (
        lost == 0
        and locked == 0
        and not errors
        and ok == expected
        and numbers == expected == max_number
        and attempts == 3 * expected
        and broken == 0
        and integrity == "ok"
    )
    detail = (
        f"{count}/{expected} runs, {ok} OK, run numbers 1..{max_number} all distinct: {numbers == expected}, "
        f"{attempts} OK attempts, {broken} broken event chains, integrity_check {integrity}, "
        f"{elapsed:.1f} s ({expected / elapsed:.0f} runs/s)"
    )
    detail += f"; workers finished {finished} runs"
    if errors:
        detail += f"; first error: {errors[0][:200]}"
    return [
        Row(
            f"{procs} processes x {runs} runs into one SQLite index",
            f"{lost} lost rows, {locked} 'database is locked', {len(errors)} errors",
            f"{expected} runs expected",
            "0 lost, 0 locked",
            met,
            detail,
        )
    ]
