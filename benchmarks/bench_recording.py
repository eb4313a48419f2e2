"""What a run writes to its index (issue 18.4), as counts: rows a flush, runbook text writes, pages a node.

A run of an N-node chain of `true` Command nodes (20, 200 and 1000 nodes; 20 and 200 with `--quick`) goes
through `RunSession` with the real local executor into a fresh SQLite index, with every statement of the
store's connection traced. Counted:

- rows changed by each committed write transaction (a flush of the engine's events, an attempt's start or
  end): the largest and the mean. O(changed): they must not grow with N (the whole snapshot saved at each
  flush made them grow linearly);
- the statements writing the runbook text (`run_texts`): once a run;
- the WAL pages the run appended, a node (a reader holds its snapshot from the start, so no checkpoint
  restarts the WAL meanwhile): bytes written, flat with N when a flush writes only what changed.

No timing: `tests/test_recording_cost.py` asserts the same shape as a test.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from bench_common import Row, chain_runbook

TEXT_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE)\s+run_texts\b", re.IGNORECASE)


def record(n: int, workdir: Path) -> dict[str, float]:
    """Counts of one whole run of an n-node chain."""
    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.domain.engine import RunState
    from playbook_nb.domain.validation import parse_runbook

    workdir.mkdir(parents=True, exist_ok=True)
    store = Store.open(workdir / f"record_{n}.db")
    conn = store.conn
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # a reader holding its snapshot from here keeps the WAL from being restarted by any connection's
    # checkpoint (the owner lease writes through a connection of its own), so it holds every page appended
    reader = sqlite3.connect(workdir / f"record_{n}.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM runs").fetchone()
    per_commit: list[int] = []  # rows changed by each transaction once the run is created
    creation: list[int] = []  # by the transactions of `RunSession.start` (the run row, N node rows)
    text_writes = 0
    opened = conn.total_changes

    def trace(sql: str) -> None:
        nonlocal opened, text_writes
        word = sql.lstrip()[:8].upper()
        if word.startswith("BEGIN"):
            opened = conn.total_changes
        elif word.startswith("COMMIT"):
            (per_commit if started else creation).append(conn.total_changes - opened)
        elif TEXT_WRITE.match(sql):
            text_writes += 1

    started = False

    before = conn.total_changes
    conn.set_trace_callback(trace)
    try:
        session = RunSession.start(
            parse_runbook(chain_runbook(n, title=f"recording {n}")),
            {},
            store,
            RunOptions(headless=True, actor="bench"),
            executor=LocalExecutor(),
        )
        started = True
        state = session.drive(lambda *_: None)
        session.close()
    finally:
        conn.set_trace_callback(None)
    if state is not RunState.OK:
        raise RuntimeError(f"the {n}-node recording run ended {state}")
    changes = conn.total_changes - before
    reader.execute("ROLLBACK")
    reader.close()
    _busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    store.close()
    return {
        "max": max(per_commit),
        "mean": sum(per_commit) / len(per_commit),
        "commits": len(per_commit),
        "creation": sum(creation),
        "rows_a_node": changes / n,
        "text_writes": text_writes,
        "pages_a_node": frames / n,
    }


def run(quick: bool, workdir: Path) -> list[Row]:
    sizes = (20, 200) if quick else (20, 200, 1000)
    got = {n: record(n, workdir / "recording") for n in sizes}
    small, large = got[sizes[0]], got[sizes[-1]]
    names = " / ".join(str(n) for n in sizes)

    def each(key: str, fmt: str) -> str:
        return " / ".join(format(got[n][key], fmt) for n in sizes)

    return [
        Row(
            f"rows written a committed transaction (flush), {names}-node `true` chains",
            f"largest {each('max', '.0f')}; mean {each('mean', '.1f')}",
            f"{each('commits', '.0f')} transactions a run; {each('rows_a_node', '.1f')} rows a node",
            "O(changed): largest flat with N",
            large["max"] <= small["max"] and large["rows_a_node"] <= small["rows_a_node"] * 1.1,
            "SQLite, RunSession with the local executor; rows = sqlite3 total_changes between BEGIN and COMMIT",
        ),
        Row(
            f"runbook text writes a run, {names}-node chains",
            each("text_writes", ".0f"),
            "statements writing run_texts",
            "1 a run",
            all(got[n]["text_writes"] == 1 for n in sizes),
            "the run row holds no runbook text (migration 0005); the text is written when the run is created",
        ),
        Row(
            f"WAL pages a run appends a node, {names}-node chains",
            each("pages_a_node", ".1f"),
            "pages of 4 KiB (a reader held the WAL from the start)",
            "flat with N (< 1.3x)",
            large["pages_a_node"] <= small["pages_a_node"] * 1.3,
            "bytes written: before migration 0005, 25 / 57 / 215 pages a node",
        ),
    ]
