"""What `pip install` of the wheel brings: the server extension enabled on install, the prebuilt JupyterLab
extension (no Node.js needed), and built assets that match their TypeScript sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_the_committed_labextension_build_matches_its_sources():
    check = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_labextension.sh"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_wheel_ships_the_server_config_and_the_prebuilt_labextension(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "playbook_nb", "kernel_ext", "templates", "jupyter-config"):
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
    (wheel,) = tmp_path.glob("playbook_nb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/data/")[0] for n in names if "/data/" in n) + "/data/"
    assert data + "etc/jupyter/jupyter_server_config.d/playbook_nb.json" in names
    lab = data + "share/jupyter/labextensions/playbook-nb/"
    assert lab + "package.json" in names and lab + "install.json" in names
    assert any(n.startswith(lab + "static/remoteEntry.") for n in names)
    assert "playbook_nb/faces/server/handlers.py" in names
    assert "playbook/domain/plugins.py" in names  # the seed's plugin import path (issue 14 point 5)
