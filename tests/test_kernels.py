"""The kernel a headless run starts (issue 19.3): over IPC sockets on Linux and macOS (no "Kernel is running
over TCP without encryption" warning, no TCP port), secrets in the kernel's start environment only (the
parent's `os.environ` never holds them), `--kernel NAME` on `compile` and `run --headless`, and
`playbook-nb kernel install`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading

import nbformat
import pytest
from conftest import run_cli, write_runbook

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.adapters.notebook.papermill_run import run_notebook
from playbook_nb.app.inputs import load_runbook

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="IPC transport: Linux and macOS")

SECRET = "s3cret-kernel-env-4711"
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()[:16]
PROBE = """
import hashlib, json, os
from ipykernel.connect import get_connection_file
info = json.load(open(get_connection_file()))
print("transport", info["transport"], "ip-is-a-path", os.path.isabs(info["ip"]))
token = os.environ.get("PLAYBOOK_SECRET_API_TOKEN", "")
print("secret-in-kernel-env", hashlib.sha256(token.encode()).hexdigest()[:16] == "DIGEST")
""".replace("DIGEST", DIGEST)


def probe_runbook(tmp_path):
    return write_runbook(
        tmp_path,
        "probe",
        "Kernel probe",
        f"[probe]\ntype = \"Python\"\ncode = '''{PROBE}'''\n",
        variables='API_TOKEN = { secret = true, description = "a token" }',
    )


def outputs_text(nb_path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return "\n".join(
        str(out.get("text", "")) + json.dumps(out.get("data", {}))
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


def test_headless_kernel_runs_over_ipc_with_secrets_in_its_start_environment(tmp_path, capfd):
    book = probe_runbook(tmp_path)
    notebook = tmp_path / "probe.ipynb"
    write_notebook(compile_runbook(load_runbook(book)), notebook)
    seen_in_parent: list[str] = []
    done = threading.Event()

    def watch_parent_environment():  # the whole run long: the secret never shows in this process's environ
        while not done.is_set():
            seen_in_parent.extend(k for k, v in list(os.environ.items()) if SECRET in v)
            done.wait(0.01)

    watcher = threading.Thread(target=watch_parent_environment)
    watcher.start()
    try:
        outcome = run_notebook(
            str(notebook),
            str(tmp_path / "out.ipynb"),
            parameters={"state_path": str(tmp_path / "runs.db"), "headless": True},
            env_secrets={"API_TOKEN": SECRET},
            cwd=str(tmp_path),
        )
    finally:
        done.set()
        watcher.join()
    assert outcome.ok, outcome.error_summary
    text = outputs_text(tmp_path / "out.ipynb")
    assert "transport ipc ip-is-a-path True" in text
    assert "secret-in-kernel-env True" in text
    assert SECRET not in text and SECRET not in (tmp_path / "out.ipynb").read_text()
    assert seen_in_parent == []
    assert "PLAYBOOK_SECRET_API_TOKEN" not in os.environ
    captured = capfd.readouterr()  # the kernel's own stderr is this process's fd 2
    assert "without encryption" not in captured.err and "TCP" not in captured.err


def test_kernel_install_then_compile_and_run_headless_with_kernel_name(tmp_path):
    prefix = tmp_path / "prefix"
    env = {"JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    installed = run_cli("kernel", "install", "--name", "pb-test", "--prefix", str(prefix), env=env)
    assert installed.returncode == 0, installed.stderr
    spec = json.loads((prefix / "share/jupyter/kernels/pb-test/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and "ipykernel_launcher" in " ".join(spec["argv"])

    book = probe_runbook(tmp_path)
    compiled = run_cli("compile", str(book), "--kernel", "pb-test", "-o", str(tmp_path / "c.ipynb"), env=env)
    assert compiled.returncode == 0, compiled.stderr
    assert nbformat.read(tmp_path / "c.ipynb", as_version=4).metadata.kernelspec["name"] == "pb-test"

    unknown = run_cli("compile", str(book), "--kernel", "no-such-kernel", env=env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "--kernel no-such-kernel: no such kernel" in unknown.stderr

    result = run_cli(
        "run", str(book), "--headless", "--kernel", "pb-test", "--vars-env", "PBT_",
        "--state-path", str(tmp_path / "runs.db"), "--json",
        env={**env, "PBT_API_TOKEN": SECRET},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["run"]["status"] == "OK" and doc["exit_code"] == 0
    executed = doc["run"]["notebook_path"]
    assert nbformat.read(executed, as_version=4).metadata.kernelspec["name"] == "pb-test"
    assert "secret-in-kernel-env True" in outputs_text(executed)
    assert "without encryption" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
