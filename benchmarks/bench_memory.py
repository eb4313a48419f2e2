"""Peak memory (ru_maxrss of the child process, from `os.wait4`) of a terminal run of a 1000-node
runbook of `true` commands, against `python -c "import playbook_nb.app.session"` measured the same way."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench_common import Row, chain_runbook, cli_env

# Started from a small launcher process, not from this one: Linux keeps the RSS high-water mark across fork and
# exec, so a child of a process that grew large (run_all after the 100,000-run store benchmark: about 330 MiB)
# would report its parent's size.
LAUNCHER = (
    "import os, subprocess, sys\n"
    "proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)\n"
    "_pid, status, usage = os.wait4(proc.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def peak_rss_kib(argv: list[str]) -> tuple[int, int, float]:
    """(exit code, ru_maxrss in KiB, seconds) of one child process."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], env=cli_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=True)  # fmt: skip
    code, peak = (int(x) for x in proc.stdout.split())
    return code, peak, time.perf_counter() - start


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
