"""What `pip install` of the wheel brings: the server extension enabled on install, the prebuilt JupyterLab
extension (no Node.js needed), and built assets that match their TypeScript sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_the_committed_labextension_build_matches_its_sources():
    check = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_labextension.sh"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built once for this module from a copy of the sources (no build isolation: no download)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "playbook_nb", "templates", "jupyter-config"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(
            REPO / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (built_wheel,) = tmp_path.glob("playbook_nb-*.whl")
    return built_wheel


def test_the_wheel_ships_the_server_config_and_the_prebuilt_labextension(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/data/")[0] for n in names if "/data/" in n) + "/data/"
    assert data + "etc/jupyter/jupyter_server_config.d/playbook_nb.json" in names
    lab = data + "share/jupyter/labextensions/playbook-nb/"
    assert lab + "package.json" in names and lab + "install.json" in names
    assert any(n.startswith(lab + "static/remoteEntry.") for n in names)
    assert "playbook_nb/faces/server/handlers.py" in names
    assert "playbook/domain/plugins.py" in names  # the seed's plugin import path (issue 14 point 5)
    assert "playbook_nb/kernel_ext/__init__.py" in names and not any(
        n.startswith("kernel_ext/") for n in names
    )


def test_the_wheel_installs_into_a_fresh_venv_and_runs(wheel, tmp_path):
    """`pip install` of the built wheel into a new venv: `playbook-nb --version` and a terminal run work, and
    JupyterLab is only the [lab] extra (a CI host for terminal and headless runs does without it). No network:
    the wheel goes in with --no-deps, its dependencies are this venv's, seen through a .pth file."""
    metadata = next(
        zipfile.ZipFile(wheel).read(n).decode()
        for n in zipfile.ZipFile(wheel).namelist()
        if n.endswith(".dist-info/METADATA")
    )
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    lab_only = [r for r in requires if "jupyterlab" in r and 'extra == "test"' not in r]
    assert lab_only == ['Requires-Dist: jupyterlab>=4.2; extra == "lab"']
    assert "Provides-Extra: lab" in metadata

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps-from-the-test-venv.pth").write_text("\n".join(ours) + "\n")
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr

    entry = venv / "bin" / "playbook-nb"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    version = subprocess.run(
        [str(entry), "--version"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"playbook-nb {wheel.name.split('-')[1]}"
    where = subprocess.run(
        [str(python), "-c", "import playbook_nb, playbook_nb.kernel_ext; print(playbook_nb.__file__)"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert where.stdout.strip().startswith(site), where.stdout + where.stderr  # the wheel's copy, not ours

    book = tmp_path / "hello.playbook.toml"
    book.write_text(
        '[runbook]\ntitle = "Hello"\ndescription = "d"\nversion = "1"\nauthor = "a"\n'
        'created_at = "2025-01-01T00:00:00Z"\n\n[hello]\ntype = "Command"\ncommand_name = "echo hi"\n'
    )
    run = subprocess.run(
        [str(entry), "run", str(book), "--state-path", str(tmp_path / "runs.db"), "--json"],
        capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["run"]["status"] == "OK"
