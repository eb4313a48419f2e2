"""Parallel branches: the `parallel_fanout` acceptance runbook (start, four independent 1-second checks, a merge)
run through `RunSession` with `--parallel 4` against `--parallel 1`, alternating, in the same process and run.

Also measured: the same through the real CLI (`playbook-nb run ... --parallel N`, process start included), and
the branch overlap read back from the index (latest branch start < earliest branch end).

Target (issue 9): the parallel run finishes in about the time of its longest branch (1 s) plus the two short
nodes, i.e. well under half of the sequential time.

    .venv/bin/python benchmarks/parallel_fanout.py [--repeat N]   # writes benchmarks/results/parallel.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FANOUT = REPO.parent / "shared" / "fixtures" / "runbooks" / "parallel_fanout.playbook.toml"
RESULTS = REPO / "benchmarks" / "results" / "parallel.md"
BRANCHES = ("check_a", "check_b", "check_c", "check_d")


def session_run(parallel: int, db: Path) -> tuple[float, bool, str]:
    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.session import RunOptions, RunSession

    runbook = load_runbook(FANOUT)
    with Store.open(db) as store:
        began = time.perf_counter()
        session = RunSession.start(
            runbook,
            {},
            store,
            RunOptions(headless=True, parallel=parallel),
            namespace={},
            executor=LocalExecutor(),
        )
        session.drive(lambda *_: None)
        session.close()
        elapsed = time.perf_counter() - began
        rows = {a.node_id: a for a in store.attempts(session.run_id) if a.node_id in BRANCHES}
        overlap = max(r.started_at for r in rows.values()) < min(r.ended_at for r in rows.values())
        return elapsed, overlap, str(session.status)


def cli_run(parallel: int, db: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "playbook_nb",
            "run",
            str(FANOUT),
            "--parallel",
            str(parallel),
            "--state-path",
            str(db),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"run failed: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"session p1": [], "session p4": [], "cli p1": [], "cli p4": []}
    overlaps = {1: [], 4: []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        for _ in range(args.repeat):  # alternate, so drift in machine load hits both sides alike
            for parallel in (1, 4):
                elapsed, overlap, status = session_run(parallel, db)
                assert status == "OK", status
                rows[f"session p{parallel}"].append(elapsed)
                overlaps[parallel].append(overlap)
        for _ in range(max(2, args.repeat // 2)):
            for parallel in (1, 4):
                rows[f"cli p{parallel}"].append(cli_run(parallel, db))

    med = {k: statistics.median(v) for k, v in rows.items()}
    speedup = med["session p1"] / med["session p4"]
    met = med["session p4"] < 1.5 and all(overlaps[4])
    lines = [
        "# Parallel branches: parallel_fanout, --parallel 4 vs --parallel 1",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs. "
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} by `benchmarks/parallel_fanout.py --repeat {args.repeat}` "
        "(the two settings alternate within one process; medians).",
        "",
        "Runbook: `start` -> four independent `sleep 1` checks -> `merge` (longest branch: 1 s).",
        "",
        "| measure | --parallel 1 | --parallel 4 | ratio |",
        "|---|---|---|---|",
        f"| RunSession, start to end (median of {args.repeat}) | {med['session p1']:.2f} s | {med['session p4']:.2f} s "
        f"| {speedup:.2f}x |",
        f"| CLI `playbook-nb run`, process start included (median of {len(rows['cli p1'])}) | {med['cli p1']:.2f} s "
        f"| {med['cli p4']:.2f} s | {med['cli p1'] / med['cli p4']:.2f}x |",
        f"| branches overlapping in the index (latest start < earliest end) | {sum(overlaps[1])}/{len(overlaps[1])} "
        f"| {sum(overlaps[4])}/{len(overlaps[4])} | |",
        "",
        f"Target: with 4 workers the run takes about its longest branch (1 s + two short nodes, < 1.5 s) and every "
        f"run shows the four branches overlapping: **{'met' if met else 'NOT met'}**.",
        "",
        f"Raw (s): {', '.join(f'{k}: ' + ' '.join(f'{x:.2f}' for x in v) for k, v in rows.items())}",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
