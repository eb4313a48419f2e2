"""Headless notebook run against plain papermill running the same commands.

Ours: `playbook-nb run FILE --headless` of an N-node chain of `true` commands (compile, papermill with the
`playbook` engine, every node recorded in the index, the executed notebook filed in the artifact dir).
Baseline: `python -m papermill` of a plain notebook with one parameters cell and N code cells each running
`subprocess.run(["/bin/sh", "-c", "true"])`. Both are whole processes: interpreter start-up and kernel
start-up are in both. The two are alternated (baseline, ours, baseline, ours, ...) so that a change of load
on a shared machine hits both alike; the best time of each is compared.

When `benchmarks/headless_vs_papermill.py` (written by another engineer) exists, `run_all` also runs it and
files its output in RESULTS.md; this module keeps its own figure so the table never depends on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from bench_common import Row, best_of, chain_runbook, cli_env, run_cli


def plain_notebook(n: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("name = 'bench'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import subprocess")]
    for _ in range(n):
        nb.cells.append(nbformat.v4.new_code_cell('subprocess.run(["/bin/sh", "-c", "true"], check=True)'))
    return nb


def run(quick: bool, workdir: Path) -> list[Row]:
    n = 10 if quick else 50
    repeat = 1 if quick else 3
    runbook = workdir / f"headless_{n}.playbook.toml"
    runbook.write_text(chain_runbook(n, title=f"headless {n}"))
    db = workdir / "headless" / "runs.db"
    plain = workdir / f"plain_{n}.ipynb"
    nbformat.write(plain_notebook(n), plain)
    out = workdir / f"plain_{n}.out.ipynb"

    def ours():
        proc = run_cli("run", str(runbook), "--headless", "--state-path", str(db))
        assert "OK" in proc.stdout, proc.stdout[-300:]

    def baseline():
        subprocess.run(
            [sys.executable, "-m", "papermill", str(plain), str(out), "-k", "python3", "-p", "name", "x",
             "--no-progress-bar"],
            env=cli_env(), capture_output=True, check=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    baseline()  # warm caches (kernel spec discovery, bytecode)
    t_base, t_ours = float("inf"), float("inf")
    for _ in range(repeat):
        t_base = min(t_base, best_of(baseline, 1))
        t_ours = min(t_ours, best_of(ours, 1))
    ratio = t_ours / t_base
    return [
        Row(
            f"headless run of a {n}-node `true` chain vs plain papermill",
            f"{ratio:.2f}x ({t_ours:.2f} s)",
            f"`python -m papermill` of {n} plain cells: {t_base:.2f} s",
            "<= 1.3x",
            ratio <= 1.3,
            f"extra per node: {(t_ours - t_base) / n * 1000:.0f} ms",
        )
    ]
