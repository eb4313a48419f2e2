"""benchmarks/run_all (issue 18.6): one benchmark that fails prints its error and the others still write their
rows; the rows of benchmarks a run does not run are kept from the previous RESULTS.md with their dates.

The benchmarks here are two small modules standing in for real ones (the harness is what is tested: the real
benchmarks take minutes); the failing one fails as the headless scripts do, with SystemExit."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_all(monkeypatch):
    loader = importlib.machinery.SourceFileLoader("run_all_under_test", str(ROOT / "benchmarks" / "run_all"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    from bench_common import Row  # run_all put benchmarks/ on sys.path

    def fine(quick, workdir):
        assert workdir.is_dir()
        return [Row("a fine figure", "1.10x", "its floor: 1.00 s", "<= 1.3x", True, "n = 50")]

    def broken(quick, workdir):
        raise SystemExit("headless run failed (3):\nkernel died")

    for name, run in (("bench_fine_for_test", fine), ("bench_broken_for_test", broken)):
        fake = types.ModuleType(name)
        fake.run = run  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, fake)
    benchmarks = {**module.BENCHMARKS, "fine": "bench_fine_for_test", "broken": "bench_broken_for_test"}
    monkeypatch.setattr(module, "BENCHMARKS", benchmarks)
    return module


def _figures(text: str) -> list[list[str]]:
    table = text.split("## Figures", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| benchmark")]  # fmt: skip


def test_a_failing_benchmark_is_reported_and_the_other_rows_are_written_and_kept(run_all, tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    earlier = [
        ["engine", "terminal overhead per node", "1.58 ms", "one spawn", "<= 1.5 ms", "**no**", "", "2026-12-02 18:48 UTC, load 1.1"],
        ["broken", "headless vs nbclient", "1.60x", "nbclient", "<= 1.3x", "**no**", "", "2026-12-02 18:19 UTC, load 3.3"],
        ["fine", "an old fine figure", "2.00x", "its floor", "<= 1.3x", "**no**", "", "2026-11-25 11:53 UTC, load 1.0"],
    ]  # fmt: skip
    out.write_text(
        "# Benchmark results\n\n## Figures\n\n"
        + run_all.table(earlier)
        + "\n\n## Time per benchmark (this run)\n\n- engine: 9 s\n"
    )

    code = run_all.main(["--only", "broken,fine", "--output", str(out)])

    printed = capsys.readouterr()
    assert code == 1
    assert "FAILED broken" in printed.out and "kernel died" in printed.out
    assert "SystemExit" in printed.err  # its traceback, for whoever reads the log
    text = out.read_text()
    rows = {(r[0], r[1]): r for r in _figures(text)}
    # the benchmark that ran: its new row replaces the old one, dated now
    assert ("fine", "an old fine figure") not in rows
    fine = rows["fine", "a fine figure"]
    assert fine[2] == "1.10x" and fine[5] == "yes" and fine[7].startswith("20") and "load" in fine[7]
    # the one that failed and the one not run keep their earlier rows with their dates
    assert rows["broken", "headless vs nbclient"][7] == "2026-12-02 18:19 UTC, load 3.3"
    assert rows["engine", "terminal overhead per node"][7] == "2026-12-02 18:48 UTC, load 1.1"
    assert "- broken: SystemExit: kernel died" in text
    assert "Carried over from earlier runs" in text and "engine" in text.split("Carried over", 1)[1]
    assert "- fine: " in text.split("## Time per benchmark", 1)[1]
    # the table reads back: a second run keeps the same carried rows
    assert run_all.previous_rows(out)["engine"] == [earlier[0]]


def test_quick_writes_no_results_file_unless_asked(run_all, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    assert run_all.main(["--quick", "--only", "fine"]) == 0
    assert not (tmp_path / "RESULTS.md").exists()
    assert "a fine figure" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nonsense"])
    assert "unknown benchmark 'nonsense'" in capsys.readouterr().err


def test_the_issue_18_tables_of_readme_and_docs_are_copied_from_the_results(run_all, tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(run_all, "HERE", tmp_path / "benchmarks")
    monkeypatch.setattr(run_all, "REPO", tmp_path)
    earlier = [
        ["engine", "terminal overhead per node over `sh -c true`, CPU time (issue 18.2)", "1.58 ms", "one spawn: 0.78 ms", "<= 1.5 ms", "**no**", "", "2026-12-02 18:48 UTC, load 1.1"],
        ["engine", "engine overhead per node, 200 nodes", "2.79 ms", "spawn", "< 5 ms", "yes", "", "2026-12-02 18:48 UTC, load 1.1"],
    ]  # fmt: skip
    (tmp_path / "benchmarks" / "RESULTS.md").write_text("## Figures\n\n" + run_all.table(earlier) + "\n")
    stale = f"intro\n\n{run_all.BEGIN_18}\n| stale | table |\n{run_all.END_18}\n\nthe rest\n"
    others = f"\n{run_all.BEGIN_OTHER}\n| stale |\n{run_all.END_OTHER}\n"
    (tmp_path / "README.md").write_text(stale + others)
    (tmp_path / "docs" / "performance.md").write_text(stale)

    assert run_all.main(["--only", "fine"]) == 0

    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("intro\n\n") and "\n\nthe rest\n" in readme and "stale" not in readme
    others_table = readme.split(run_all.BEGIN_OTHER)[1].split(run_all.END_OTHER)[0]
    assert "| engine overhead per node, 200 nodes | 2.79 ms |" in others_table
    assert "a fine figure" in others_table and "(issue 18.2)" not in others_table
    table = readme.split(run_all.BEGIN_18)[1].split(run_all.END_18)[0]
    row = next(line for line in table.splitlines() if line.startswith("| 18.2 "))
    assert "1.58 ms" in row and "**no**" in row and "2026-12-02 18:48 UTC" in row
    assert "(docs/performance.md#terminal-overhead-a-node-issue-182)" in row
    assert "engine overhead per node, 200 nodes" not in table  # not an issue-18 figure
    docs = (tmp_path / "docs" / "performance.md").read_text()
    assert "[profile](#terminal-overhead-a-node-issue-182)" in docs


def test_merge_results_keeps_the_newer_rows_of_each_benchmark(run_all, tmp_path):
    ours = [
        ["engine", "terminal overhead", "1.50 ms", "spawn", "<= 1.5 ms", "yes", "", "2026-12-02 20:23 UTC, load 1.7"],
        ["startup", "`--help`", "1.33x", "typer", "<= 1.5x", "yes", "", "2026-12-02 20:23 UTC, load 1.9"],
    ]  # fmt: skip
    theirs = [
        ["engine", "terminal overhead", "1.58 ms", "spawn", "<= 1.5 ms", "**no**", "", "2026-12-02 18:48 UTC, load 1.1"],
        ["startup", "`--help`", "1.31x", "typer", "<= 1.5x", "yes", "", "2026-12-02 20:34 UTC, load 7.6"],
        ["fleet", "fleet step", "12.3 s", "ssh loop", "-", "-", "", "2026-12-01, load 9.7"],
    ]  # fmt: skip
    mine, other = tmp_path / "RESULTS.md", tmp_path / "theirs.md"
    mine.write_text("## Figures\n\n" + run_all.table(ours) + "\n")
    other.write_text(
        "<<<<<<< conflict markers elsewhere are ignored\n## Figures\n\n" + run_all.table(theirs) + "\n"
    )

    assert run_all.main(["--merge-results", str(other), "--output", str(mine)]) == 0

    rows = {r[0]: r for r in _figures(mine.read_text())}
    assert rows["engine"][2] == "1.50 ms"  # ours, measured later
    assert rows["startup"][2] == "1.31x"  # theirs, measured later
    assert rows["fleet"][7] == "2026-12-01, load 9.7"  # only theirs had it
    assert [r[0] for r in _figures(mine.read_text())] == ["startup", "engine", "fleet"]  # run_all's order


BROWSER_REPORT = """# Browser benchmark: the cockpit in JupyterLab

| measure | playbook-nb | baseline | ratio | baseline is |
|---|---|---|---|---|
| first render, 200-node runbook: Run All -> canvas ink | 2.045 s | 1.044 s | 1.96x | plain graph, one cell |
| click Approve, the page settled -> gate colour painted on the canvas | 0.062 s | 0.048 s | 1.30x | plain Button |

## Where the first render goes (200 nodes, medians)

| phase | playbook-nb | plain graph, one cell | ratio | plain graph, the runbook's cells | ratio |
|---|---|---|---|---|---|
| Run All -> kernel busy | 681 ms | 64 ms | 10.62x | 662 ms | 1.03x |

## 1000 nodes (one run each)

| measure | playbook-nb | plain baseline |
|---|---|---|
| Run All -> canvas ink | 7320 ms | 3340 ms |
| widget view created -> canvas ink | 1340 ms | 460 ms |
| click -> colour painted | {click} | 44 ms |

Kernel side, same runbook, no browser: ...
"""


def test_the_browser_rows_include_the_big_graph_and_say_when_it_did_not_answer(run_all):
    """18.5's "a 1000-node runbook renders and stays responsive" reaches RESULTS.md from browser_render's big
    pair: one row for its render, one for its click, met only when the cockpit's figure was measured."""
    import bench_browser

    rows = bench_browser.parse(BROWSER_REPORT.format(click="315 ms"), 200, 10)
    assert [(r.measure, r.value, r.target, r.met) for r in rows] == [
        ("cockpit: first render, 200-node runbook: Run All -> canvas ink", "2.045 s (1.96x)", "< 1.5 s", False),
        ("cockpit: click Approve, the page settled -> gate colour painted on the canvas", "0.062 s (1.30x)",
         "< 100 ms", True),
        ("cockpit: first render, 1000-node runbook (one run): Run All -> canvas ink", "7320 ms", "renders", True),
        ("cockpit: click Approve, 1000-node runbook (one run) -> gate colour painted", "315 ms", "answers", True),
    ]  # fmt: skip
    assert rows[2].baseline == "plain ipycytoscape graph of 1000 nodes, one cell: 3340 ms"
    failed = BROWSER_REPORT.format(click="-").replace(
        "Kernel side", "cockpit failed: Timeout 120000ms exceeded.\n\nplain failed: no ink\n\nKernel side"
    )
    unanswered = bench_browser.parse(failed, 200, 10)
    assert unanswered[3].met is False
    assert unanswered[3].note.endswith(
        "; the cockpit's run failed: Timeout 120000ms exceeded.; the plain baseline's run failed: no ink"
    )
    without_big = BROWSER_REPORT.split("## 1000 nodes")[0]
    assert len(bench_browser.parse(without_big, 200, 10)) == 2
