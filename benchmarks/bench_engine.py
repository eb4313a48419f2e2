"""Engine overhead per node from the terminal: `playbook-nb run` of a 200-node chain of `true` commands.

Baselines, measured in the same run:
- the same 200 commands each spawned as `/bin/sh -c true` by a Python loop of `subprocess.run` (what any
  runner must pay per command: a fork/exec of the shell);
- a plain shell loop `for i in ...; do true; done` (the builtin, no process at all) for scale.

Overhead per node = (T(200-node run) - T(1-node run)) / 199 - T(subprocess loop) / 200: start-up is taken out
with the 1-node run, the unavoidable process spawn with the subprocess loop; what is left is the engine,
the store writes (one committed SQLite transaction per engine transition, one per attempt start and end) and
the terminal view.

A full run also measures the same figure for a 1000-node chain (spawn loop of 1000 alike), to show how the
overhead grows with the size of the runbook (it used to grow linearly a node, quadratically a run).

Each figure is given twice: from the wall time (best of the repetitions), and from the CPU time (user +
system of the process and every command it ran, from getrusage; the least of the repetitions). The
repetitions are 5 interleaved rounds, each running the 1-node, 200-node and 1000-node runs and both spawn
loops once. On a loaded machine the wall time mostly measures the wait for a core; the CPU figure is what the
run itself costs.
"""

from __future__ import annotations

import resource
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench_common import Row, best_of, chain_runbook, ms, run_cli

N = 200
N_LARGE = 1000


def spawn_loop(n: int) -> None:
    for _ in range(n):
        subprocess.run(["/bin/sh", "-c", "true"], check=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def least_wall_and_cpu(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, float]]:
    """For each of `fns`: its best wall time and its least CPU time (user + system, children included) over
    `rounds` rounds, each round calling every one of them once, in turn. Interleaved, a change of the machine's
    load falls on every figure alike instead of on the ones that ran during it: the per-node figure is a
    difference of two runs a few seconds apart, and a load that moves between them moves it."""
    walls: dict[str, list[float]] = {name: [] for name in fns}
    cpus: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            before = _children_cpu()
            walls[name].append(best_of(fn, 1))
            cpus[name].append(_children_cpu() - before)
    return {name: (min(walls[name]), min(cpus[name])) for name in fns}


def run(quick: bool, workdir: Path) -> list[Row]:
    big = workdir / "chain_200.playbook.toml"
    big.write_text(chain_runbook(N, title="engine overhead 200"))
    one = workdir / "chain_1.playbook.toml"
    one.write_text(chain_runbook(1, title="engine overhead 1"))
    huge = workdir / f"chain_{N_LARGE}.playbook.toml"
    huge.write_text(chain_runbook(N_LARGE, title=f"engine overhead {N_LARGE}"))
    db = workdir / "engine" / "runs.db"
    # 5 rounds: at 3, the 200-node figure moved by 0.3 ms a node between runs minutes apart on a quiet
    # machine (a 0.8 s run less a 0.35 s one, over 199 nodes: 30 ms of start-up noise is 0.15 ms a node)
    rounds = 1 if quick else 5

    def pb(path: Path):
        proc = run_cli("run", str(path), "--state-path", str(db))
        assert "run OK" in proc.stdout, proc.stdout[-300:]

    pb(one)  # warm the file cache and create the index
    fns = {"one": lambda: pb(one), "big": lambda: pb(big), "spawn": lambda: spawn_loop(N)}
    if not quick:
        fns |= {"huge": lambda: pb(huge), "spawn_huge": lambda: spawn_loop(N_LARGE)}
    least = least_wall_and_cpu(fns, rounds)
    (t_one, c_one), (t_big, c_big), (t_spawn, c_spawn) = least["one"], least["big"], least["spawn"]
    t_shell = best_of(
        lambda: subprocess.run(["/bin/sh", "-c", f"for i in $(seq {N}); do true; done"], check=True),
        rounds + 1,
    )
    per_node = (t_big - t_one) / (N - 1)
    overhead = per_node - t_spawn / N
    cpu_overhead = (c_big - c_one) / (N - 1) - c_spawn / N
    rows = [
        Row(
            f"engine overhead per node, terminal run of a {N}-node `true` chain",
            f"{ms(overhead)} a node",
            f"subprocess per command: {ms(t_spawn / N)} a node; playbook-nb: {ms(per_node)} a node",
            "< 5 ms a node",
            overhead < 0.005,
            f"whole run {t_big:.2f} s vs {t_spawn:.2f} s for the bare spawns "
            f"({t_big / t_spawn:.1f}x); 1-node run (start-up) {t_one:.2f} s; "
            f"sh builtin loop {ms(t_shell)} in all; CPU time: {ms(cpu_overhead)} a node over "
            f"{ms(c_spawn / N)} a spawn",
        )
    ]
    cpu_row = Row(
        f"terminal overhead per node over `sh -c true`, CPU time, {N}-node chain (issue 18.2)",
        f"{ms(cpu_overhead)} a node",
        f"one spawn: {ms(c_spawn / N)} CPU",
        "<= 1.5 ms a node",
        cpu_overhead <= 0.0015,
        "1000 nodes and the growth not measured with --quick",
    )
    if not quick:
        # as many rounds as at N: a least of 3 against a single run would make the growth partly noise
        (t_huge, c_huge), (t_spawn_huge, c_spawn_huge) = least["huge"], least["spawn_huge"]
        overhead_huge = (t_huge - t_one) / (N_LARGE - 1) - t_spawn_huge / N_LARGE
        cpu_overhead_huge = (c_huge - c_one) / (N_LARGE - 1) - c_spawn_huge / N_LARGE
        rows.append(
            Row(
                f"engine overhead per node, terminal run of a {N_LARGE}-node `true` chain",
                f"{ms(overhead_huge)} a node",
                f"subprocess per command: {ms(t_spawn_huge / N_LARGE)} a node; "
                f"playbook-nb: {ms((t_huge - t_one) / (N_LARGE - 1))} a node",
                "",
                None,
                f"whole run {t_huge:.2f} s; the same formula as the {N}-node row, to show the growth with size; "
                f"CPU time: {ms(cpu_overhead_huge)} a node ({cpu_overhead_huge / cpu_overhead:.2f}x the "
                f"{N}-node figure)",
            )
        )
        growth = cpu_overhead_huge / cpu_overhead
        cpu_row = Row(
            f"terminal overhead per node over `sh -c true`, CPU time, {N} and {N_LARGE}-node chains (issue 18.2)",
            f"{ms(cpu_overhead)} and {ms(cpu_overhead_huge)} a node ({N_LARGE}/{N}: {growth:.2f}x)",
            f"one spawn: {ms(c_spawn / N)} CPU",
            "<= 1.5 ms a node, growth < 20 %",
            max(cpu_overhead, cpu_overhead_huge) <= 0.0015 and growth < 1.2,
            f"CPU of the process and every command it ran (getrusage), least of {rounds} interleaved runs "
            f"at 1, {N} and {N_LARGE} nodes; wall: {ms(overhead)} and {ms(overhead_huge)} a node; whole "
            f"{N_LARGE}-node run {t_huge:.2f} s",
        )
    rows.append(cpu_row)
    return rows
