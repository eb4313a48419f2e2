"""Engine overhead per node from the terminal: `playbook-nb run` of a 200-node chain of `true` commands.

Baselines, measured in the same run:
- the same 200 commands each spawned as `/bin/sh -c true` by a Python loop of `subprocess.run` (what any
  runner must pay per command: a fork/exec of the shell);
- a plain shell loop `for i in ...; do true; done` (the builtin, no process at all) for scale.

Overhead per node = (T(200-node run) - T(1-node run)) / 199 - T(subprocess loop) / 200: start-up is taken out
with the 1-node run, the unavoidable process spawn with the subprocess loop; what is left is the engine,
the store writes (several committed SQLite transactions per node) and the terminal view.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench_common import Row, best_of, chain_runbook, ms, run_cli

N = 200


def run(quick: bool, workdir: Path) -> list[Row]:
    big = workdir / "chain_200.playbook.toml"
    big.write_text(chain_runbook(N, title="engine overhead 200"))
    one = workdir / "chain_1.playbook.toml"
    one.write_text(chain_runbook(1, title="engine overhead 1"))
    db = workdir / "engine" / "runs.db"
    repeat = 1 if quick else 3

    def pb(path: Path):
        proc = run_cli("run", str(path), "--state-path", str(db))
        assert "run OK" in proc.stdout, proc.stdout[-300:]

    pb(one)  # warm the file cache and create the index
    t_one = best_of(lambda: pb(one), repeat + 1)
    t_big = best_of(lambda: pb(big), repeat)

    def spawn_loop():
        for _ in range(N):
            subprocess.run(["/bin/sh", "-c", "true"], check=True)

    t_spawn = best_of(spawn_loop, repeat + 1)
    t_shell = best_of(
        lambda: subprocess.run(["/bin/sh", "-c", f"for i in $(seq {N}); do true; done"], check=True),
        repeat + 1,
    )
    per_node = (t_big - t_one) / (N - 1)
    overhead = per_node - t_spawn / N
    return [
        Row(
            f"engine overhead per node, terminal run of a {N}-node `true` chain",
            f"{ms(overhead)} a node",
            f"subprocess per command: {ms(t_spawn / N)} a node; playbook-nb: {ms(per_node)} a node",
            "< 5 ms a node",
            overhead < 0.005,
            f"whole run {t_big:.2f} s vs {t_spawn:.2f} s for the bare spawns "
            f"({t_big / t_spawn:.1f}x); 1-node run (start-up) {t_one:.2f} s; "
            f"sh builtin loop {ms(t_shell)} in all",
        )
    ]
