"""The `playbook` papermill engine and `run_notebook`: output path given to the kernel, secrets off disk.

These run hand-written notebooks (no playbook_nb.kernel_ext needed) in a real ipykernel.
"""

from __future__ import annotations

import hashlib
import os

import nbformat
import papermill
import pytest
from papermill.engines import papermill_engines

from playbook_nb.adapters.notebook import papermill_engine
from playbook_nb.adapters.notebook.papermill_engine import (
    MASK,
    OUTPUT_PATH_ENV,
    PlaybookEngine,
    ScrubbingExecutionManager,
    leaked_secrets,
    scrub_notebook,
)
from playbook_nb.adapters.notebook.papermill_run import (
    PapermillOutcome,
    notebook_file_name,
    run_notebook,
    split_secrets,
)

SECRET = "tok-5f1e9c-very-secret"
RUNBOOK_TEXT = (
    '[variables]\nAPI_TOKEN = { required = true, secret = true }\nSERVICE = { default = "billing" }\n'
)


def make_notebook(path, *code_cells: str, runbook_text: str | None = RUNBOOK_TEXT) -> str:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("variables = {}\nsecret_env = {}")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(src) for src in code_cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if runbook_text is not None:
        nb.metadata["playbook_nb"] = {"runbook_text": runbook_text}
    nbformat.write(nb, str(path))
    return str(path)


def stream_text(nb) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.output_type == "stream"
    )


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_engine_is_registered_through_the_entry_point():
    assert papermill_engines.get_engine("playbook") is PlaybookEngine


@pytest.mark.slow
def test_kernel_learns_output_path(tmp_path, monkeypatch):
    monkeypatch.delenv(OUTPUT_PATH_ENV, raising=False)
    src = make_notebook(
        tmp_path / "in.ipynb",
        "import os\nprint('OUTPUT_PATH=' + str(os.environ.get('PLAYBOOK_NB_OUTPUT_PATH')))",
        runbook_text=None,
    )
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    # a relative output path, executed in another working directory: the kernel gets the absolute path
    papermill.execute_notebook(
        src,
        "runs/out.ipynb",
        engine_name="playbook",
        kernel_name="python3",
        cwd=str(tmp_path / "elsewhere"),
        progress_bar=False,
    )
    out = nbformat.read(tmp_path / "runs" / "out.ipynb", as_version=4)
    assert f"OUTPUT_PATH={tmp_path / 'runs' / 'out.ipynb'}\n" in stream_text(out)
    assert os.environ.get(OUTPUT_PATH_ENV) is None  # restored in the caller's process


@pytest.mark.slow
def test_injected_secret_is_masked_on_disk_but_reaches_the_kernel(tmp_path):
    out_path = tmp_path / "out.ipynb"
    src = make_notebook(
        tmp_path / "in.ipynb",
        # the kernel sees the real values; the autosaves written so far hold no secret
        "import hashlib, os\n"
        "print('TOKEN', hashlib.sha256(variables['API_TOKEN'].encode()).hexdigest())\n"
        "print('OTHER', hashlib.sha256(variables['DB_PASSWORD'].encode()).hexdigest())\n"
        "saved = open(os.environ['PLAYBOOK_NB_OUTPUT_PATH']).read()\n"
        "print('ON DISK DURING RUN:', variables['API_TOKEN'] in saved, variables['DB_PASSWORD'] in saved)",
    )
    papermill.execute_notebook(
        src,
        str(out_path),
        parameters={
            "variables": {"API_TOKEN": SECRET, "DB_PASSWORD": "pw-9a8b7c6d", "SERVICE": "billing"},
            # named in secret_env, hence a secret although the runbook does not declare it
            "secret_env": {"DB_PASSWORD": "MY_DB_PASSWORD"},
        },
        engine_name="playbook",
        progress_bar=False,
    )
    raw = out_path.read_text()
    assert SECRET not in raw and "pw-9a8b7c6d" not in raw
    out = nbformat.read(out_path, as_version=4)
    (injected,) = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert f'"API_TOKEN": "{MASK}"' in injected.source
    assert f'"DB_PASSWORD": "{MASK}"' in injected.source
    assert '"SERVICE": "billing"' in injected.source
    warnings = [line for line in injected.source.splitlines() if line.startswith("# WARNING (playbook-nb):")]
    assert len(warnings) == 1 and "API_TOKEN" in warnings[0] and "DB_PASSWORD" in warnings[0]
    assert out.metadata.papermill.parameters["variables"]["API_TOKEN"] == MASK
    text = stream_text(out)
    assert f"TOKEN {digest(SECRET)}" in text
    assert f"OTHER {digest('pw-9a8b7c6d')}" in text
    assert "ON DISK DURING RUN: False False" in text


def test_scrub_notebook_is_idempotent_and_ignores_non_secrets():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        f'# Parameters\nvariables = {{"API_TOKEN": "{SECRET}", "SERVICE": "x"}}\n'
    )
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {"parameters": {"variables": {"API_TOKEN": SECRET, "SERVICE": "x"}}}
    nb.metadata["playbook_nb"] = {"runbook_text": RUNBOOK_TEXT}
    assert leaked_secrets(nb) == {"API_TOKEN": SECRET}
    assert scrub_notebook(nb, "python3") == ["API_TOKEN"]
    assert scrub_notebook(nb, "python3") == []
    assert SECRET not in nbformat.writes(nb)
    assert cell.source.count("# WARNING (playbook-nb):") == 1
    assert '"SERVICE": "x"' in cell.source
    nb.metadata["papermill"] = {"parameters": {"variables": {"SERVICE": "y"}}}
    assert leaked_secrets(nb) == {}


def test_split_secrets_moves_secret_values_out_of_parameters():
    params, environ = split_secrets(
        {"variables": {"API_TOKEN": "from-vars", "SERVICE": "x"}, "gate_policy": "approve-all"},
        {"OTHER": "o"},
        {"API_TOKEN"},
    )
    assert params["variables"] == {"SERVICE": "x"}
    assert params["gate_policy"] == "approve-all"
    assert params["secret_env"] == {
        "API_TOKEN": "PLAYBOOK_SECRET_API_TOKEN",
        "OTHER": "PLAYBOOK_SECRET_OTHER",
    }
    assert environ == {"PLAYBOOK_SECRET_API_TOKEN": "from-vars", "PLAYBOOK_SECRET_OTHER": "o"}
    # keys may also be the environment variable names secret_env points to
    params, environ = split_secrets(
        {"variables": {}, "secret_env": {"API_TOKEN": "MY_TOKEN"}}, {"MY_TOKEN": "t"}, {"API_TOKEN"}
    )
    assert environ == {"MY_TOKEN": "t"} and params["secret_env"] == {"API_TOKEN": "MY_TOKEN"}
    _, environ = split_secrets({}, {"PLAYBOOK_SECRET_API_TOKEN": "t"}, {"API_TOKEN"})
    assert environ == {"PLAYBOOK_SECRET_API_TOKEN": "t"}


@pytest.mark.slow
def test_run_notebook_secrets_through_environment_and_failures_are_outcomes(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYBOOK_SECRET_API_TOKEN", raising=False)
    src = make_notebook(
        tmp_path / "in.ipynb",
        "import hashlib, os\n"
        "print('ENV', hashlib.sha256(os.environ['PLAYBOOK_SECRET_API_TOKEN'].encode()).hexdigest())\n"
        "print('VARS', sorted(variables), secret_env)",
        "raise RuntimeError('run ended NOK')",
        "print('never')",
    )
    out_path = tmp_path / "out.ipynb"
    outcome = run_notebook(
        src,
        str(out_path),
        parameters={"variables": {"SERVICE": "billing", "API_TOKEN": SECRET}},
        env_secrets=None,
    )
    assert isinstance(outcome, PapermillOutcome)
    assert outcome.raised and not outcome.ok
    assert outcome.ename == "RuntimeError" and outcome.evalue == "run ended NOK"
    assert outcome.error_summary == "RuntimeError: run ended NOK"
    assert outcome.output_path == str(out_path)
    raw = out_path.read_text()
    assert SECRET not in raw
    text = stream_text(nbformat.read(out_path, as_version=4))
    assert f"ENV {digest(SECRET)}" in text
    assert "VARS ['SERVICE'] {'API_TOKEN': 'PLAYBOOK_SECRET_API_TOKEN'}" in text
    assert "never" not in text
    assert "PLAYBOOK_SECRET_API_TOKEN" not in os.environ  # restored


# What the kernel process itself writes on its standard error (not a cell's output, which goes to the notebook).
KERNEL_STDERR = (
    "import os, sys\nos.write(getattr(sys.stderr, '_original_stdstream_copy', None) or 2, b'{text}\\n')"
)


@pytest.mark.slow
def test_run_notebook_dead_kernel_writes_partial_notebook(tmp_path, capfd):
    src = make_notebook(
        tmp_path / "in.ipynb",
        "print('before the crash')",
        KERNEL_STDERR.format(text="kernel last words") + "\nos._exit(1)",
        "print('after')",
        runbook_text=None,
    )
    out_path = tmp_path / "out.ipynb"
    outcome = run_notebook(src, str(out_path), parameters={"variables": {}}, env_secrets={"API_TOKEN": "x"})
    assert outcome.raised and outcome.kernel_died and outcome.ename == "DeadKernelError"
    text = stream_text(nbformat.read(out_path, as_version=4))
    assert "before the crash" in text and "after" not in text
    # the dead kernel's stderr may say why it died: its tail is shown, marked as the kernel's
    assert "kernel stderr: kernel last words" in capfd.readouterr().err


@pytest.mark.slow
def test_a_live_kernels_own_stderr_stays_off_the_terminal(tmp_path, capfd):
    """ipykernel's log and shutdown races (an "Uncaught exception in ZMQStream callback" traceback) are not
    the run's output: a run whose kernel lived says nothing of them."""
    src = make_notebook(
        tmp_path / "in.ipynb", KERNEL_STDERR.format(text="kernel noise"), "print('done')", runbook_text=None
    )
    outcome = run_notebook(src, str(tmp_path / "out.ipynb"), parameters={"variables": {}})
    assert outcome.ok, outcome.error_summary
    assert "done" in stream_text(nbformat.read(tmp_path / "out.ipynb", as_version=4))
    assert "kernel noise" not in capfd.readouterr().err


@pytest.mark.slow
def test_run_notebook_success_and_a_compiled_notebook_is_valid(tmp_path):
    from conftest import FIXTURES

    from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
    from playbook_nb.app.inputs import load_runbook

    runbook = load_runbook(FIXTURES / "parallel_fanout.playbook.toml")
    assert notebook_file_name(runbook) == "parallel_fanout.ipynb"
    path = tmp_path / notebook_file_name(runbook)
    write_notebook(compile_runbook(runbook), path)
    nbformat.validate(nbformat.read(path, as_version=4))
    src = make_notebook(tmp_path / "ok.ipynb", "print('fine')", runbook_text=None)
    outcome = run_notebook(src, str(tmp_path / "ok-out.ipynb"), parameters={}, timeout=60)
    assert outcome.ok and outcome.ename is None and outcome.error_summary == ""
    assert "fine" in stream_text(nbformat.read(tmp_path / "ok-out.ipynb", as_version=4))


def _on_disk(path) -> dict[int, str]:
    """cell index -> the papermill status of that cell in the notebook on disk."""
    nb = nbformat.read(path, as_version=4)
    return {i: c.metadata.get("papermill", {}).get("status") for i, c in enumerate(nb.cells)}


def test_saves_during_the_run_are_spaced_but_a_failure_and_the_end_are_written_at_once(tmp_path, monkeypatch):
    """papermill saves the whole notebook when every cell starts and ends (O(N^2) a run): the engine writes
    it at the start, after a failed cell, at the end, and in between at most every SAVE_EVERY seconds."""
    monkeypatch.setattr(papermill_engine, "SAVE_EVERY", 3600.0)
    nb = nbformat.read(make_notebook(tmp_path / "in.ipynb", *[f"print({i})" for i in range(100)]), 4)
    for cell in nb.cells:
        cell.metadata["papermill"] = {}
    nb.metadata["papermill"] = {}
    out = tmp_path / "out.ipynb"
    manager = ScrubbingExecutionManager(nb, output_path=str(out), progress_bar=False)
    manager.notebook_start()
    assert set(_on_disk(out).values()) == {"pending"}  # written at the start
    for index in range(60):
        manager.cell_start(nb.cells[index], index)
        nb.cells[index].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{index}\n")]
        manager.cell_complete(nb.cells[index], index)
    assert set(_on_disk(out).values()) == {"pending"}  # 120 saves asked for within the interval: none written
    manager.cell_start(nb.cells[60], 60)
    manager.cell_exception(nb.cells[60], 60)
    manager.cell_complete(nb.cells[60], 60)
    disk = _on_disk(out)  # the failed cell at once, with everything before it
    assert disk[60] == "failed" and all(disk[i] == "completed" for i in range(60)) and disk[61] == "pending"
    assert "59\n" in stream_text(nbformat.read(out, as_version=4))
    manager.notebook_complete()
    assert nbformat.read(out, as_version=4).metadata.papermill["end_time"]  # the end: written at once


@pytest.mark.slow
def test_a_deferred_save_is_written_while_a_long_cell_runs(tmp_path, monkeypatch):
    """A save skipped because the last write was recent is written once the interval is over, by a timer on
    nbclient's loop, even while the next cell is still running and prints nothing."""
    monkeypatch.setattr(papermill_engine, "SAVE_EVERY", 10.0)  # longer than the quick cells take
    src = make_notebook(
        tmp_path / "in.ipynb",
        *[f"print('quick cell', {i})" for i in range(5)],
        "import os, time\n"
        "path, seen, deadline = os.environ['PLAYBOOK_NB_OUTPUT_PATH'], False, time.monotonic() + 40\n"
        "while not seen and time.monotonic() < deadline:\n"
        "    seen = ('quick cell ' + '4') in open(path).read()\n"
        "    time.sleep(0.05)\n"
        "print('SEEN ON DISK WHILE RUNNING:', seen)",
        runbook_text=None,
    )
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        src, str(out), engine_name="playbook", kernel_name="python3", progress_bar=False
    )
    assert "SEEN ON DISK WHILE RUNNING: True" in stream_text(nbformat.read(out, as_version=4))
