"""Peak memory (ru_maxrss of the child process, from `os.wait4`) of a terminal run of a 1000-node
runbook of `true` commands, against `python -c "import playbook_nb.app.session"` measured the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench_common import Row, chain_runbook, cli_env


def peak_rss_kib(argv: list[str]) -> tuple[int, int, float]:
    """(exit code, ru_maxrss in KiB, seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, time.perf_counter() - start


def run(quick: bool, workdir: Path) -> list[Row]:
    n = 1000
    path = workdir / "memory_1000.playbook.toml"
    path.write_text(chain_runbook(n, title="memory 1000"))
    db = workdir / "memory" / "runs.db"
    code, base, _ = peak_rss_kib([sys.executable, "-c", "import playbook_nb.app.session"])
    assert code == 0
    code, peak, seconds = peak_rss_kib(
        [sys.executable, "-m", "playbook_nb", "run", str(path), "--state-path", str(db)]
    )
    if code != 0:
        raise RuntimeError(f"1000-node run exited {code}")
    return [
        Row(
            f"peak memory of a terminal run of {n} `true` nodes",
            f"{peak / 1024:.0f} MiB ({peak / base:.2f}x)",
            f"`import playbook_nb.app.session`: {base / 1024:.0f} MiB",
            "",
            None,
            f"the run took {seconds:.1f} s ({seconds / n * 1000:.1f} ms a node, start-up included)",
        )
    ]
