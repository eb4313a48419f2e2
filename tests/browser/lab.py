"""Helpers for driving a real JupyterLab 4 in Chromium through Playwright (sync API).

`LabServer` starts and stops one isolated `jupyter lab` process; the page helpers open a notebook,
run all its cells through the Run menu, wait for the kernel, and find the ipycytoscape canvas.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("PLAYBOOK_NB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Generous defaults: CI machines have 2 cores and the first kernel start is slow.
NOTEBOOK_TIMEOUT_MS = 60_000
KERNEL_TIMEOUT_MS = 120_000
WIDGET_TIMEOUT_MS = 60_000


def free_port() -> int:
    """A TCP port nobody listens on right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """One `jupyter lab` process with its own config/data/runtime dirs under `home`.

    Labextensions installed into the venv (sys.prefix/share/jupyter/labextensions: ipywidgets,
    ipycytoscape) stay visible, because JUPYTER_PATH still includes sys.prefix.
    """

    root_dir: Path
    home: Path
    token: str = "playbook-nb-browser-tests"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the run index the server and kernels use

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "jupyter-lab.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PREFER_ENV_PATH"):
            env.pop(var, None)
        dirs = {
            "JUPYTER_CONFIG_DIR": self.home / "config",
            "JUPYTER_DATA_DIR": self.home / "data",
            "JUPYTER_RUNTIME_DIR": self.home / "runtime",
            "JUPYTERLAB_SETTINGS_DIR": self.home / "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": self.home / "lab-workspaces",
            "IPYTHONDIR": self.home / "ipython",
        }
        for name, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        # Kernels started by the server must import the checkout, as the tests do.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        env.update(self.extra_env)
        self._write_lab_settings(dirs["JUPYTERLAB_SETTINGS_DIR"])
        startup = dirs["IPYTHONDIR"] / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).with_name("kernel_watchdog.py"), startup / "00-playbook-watchdog.py")
        return env

    @staticmethod
    def _write_lab_settings(settings_dir: Path) -> None:
        """No news/update toasts (no network here) and a plain, predictable UI."""
        notif = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notif.parent.mkdir(parents=True, exist_ok=True)
        notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.disable_check_xsrf=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]

    def start(self, timeout: float = 90.0) -> None:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            env=self.env(),
            cwd=self.root_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode} before answering:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer {url} within {timeout:.0f}s:\n{self.log_tail()}")

    def api(self, method: str, path: str) -> object:
        req = urllib.request.Request(
            f"{self.base_url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def wait_idle(self, notebook: str | None = None, timeout: float = 180.0) -> None:
        """The kernel of `notebook` (of every session when None) is idle by the server's word, twice in a row
        half a second apart: the page's own indicator can lag far behind a long notebook's outputs. The server
        is shared by the browser tests, so a test names its notebook: another test's kernel may stay busy."""
        deadline, calm = time.monotonic() + timeout, 0
        while calm < 2:
            sessions = self.api("GET", "/api/sessions") or []
            kernels = [s["kernel"] for s in sessions if notebook in (None, s.get("path")) and s.get("kernel")]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the kernel of {notebook or 'every session'} never went idle: {kernels}"
                )
            calm = calm + 1 if kernels and all(k.get("execution_state") == "idle" for k in kernels) else 0
            time.sleep(0.5)

    def stop(self, timeout: float = 15.0) -> None:
        """Shut kernels down, then stop the server by its own pid (terminate, wait, kill)."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
            for kernel in self.api("GET", "/api/kernels") or []:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        children = _children(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        for child in children:  # kernels the server failed to reap, by their own pids
            with contextlib.suppress(Exception):
                if child.is_running():
                    child.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kernels(self) -> list[dict]:
        """The server's running kernels (`GET /api/kernels`): id, execution_state, last_activity, connections.
        The server's execution state comes from the kernel's own status messages, not from a page."""
        with urllib.request.urlopen(f"{self.base_url}/api/kernels?token={self.token}", timeout=10) as reply:
            return json.load(reply)

    def kernels_now(self, into: Path) -> list[str]:
        """For a failure report: each kernel as the server sees it (execution state, last activity, open
        connections) and, with py-spy, what each kernel process's main thread is doing right now (all its
        threads in `into`)."""
        lines = []
        try:
            for k in self.kernels():
                lines.append(
                    f"kernel {k['id'][:8]}: {k.get('execution_state')} (last activity"
                    f" {k.get('last_activity')}, {k.get('connections')} connection(s))"
                )
        except Exception as err:  # the server may be gone; report what we can
            lines.append(f"(no kernel list from the server: {err})")
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        for child in _children(self.process.pid if self.process else 0):
            try:
                cmdline = " ".join(child.cmdline())
            except Exception:
                continue
            if "ipykernel" not in cmdline or not os.path.exists(spy):
                continue
            try:
                dump = subprocess.run(
                    [spy, "dump", "--pid", str(child.pid)], capture_output=True, text=True, timeout=30
                )
                text = dump.stdout + dump.stderr
                with into.open("a") as out:
                    out.write(f"== kernel process {child.pid}: {cmdline}\n{text}\n")
                main = text.split('"MainThread"', 1)[-1].split("\nThread ", 1)[0].splitlines()[:16]
                lines += [
                    f"kernel process {child.pid} ({cmdline[-50:]}), main thread (all in {into}):",
                    *main,
                ]
            except Exception as err:
                lines.append(f"(no py-spy dump of {child.pid}: {err})")
        return lines


def _children(pid: int) -> list:
    try:
        import psutil
    except ImportError:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


# --- page helpers ---------------------------------------------------------------------------------

# JS expression: the notebook panel of the current main-area tab (other notebooks may be open, hidden).
CURRENT_PANEL = """(() => {
    const tab = document.querySelector('.lm-TabBar-tab.jp-mod-current');
    const byTab = tab && tab.dataset.id && document.getElementById(tab.dataset.id);
    if (byTab && byTab.classList.contains('jp-NotebookPanel')) return byTab;
    return [...document.querySelectorAll('.jp-NotebookPanel')].find(p => p.checkVisibility()) || null;
})()"""


def current_notebook(page):
    """A Locator on the notebook panel of the current tab."""
    panel_id = page.evaluate(f"() => {{ const p = {CURRENT_PANEL}; return p ? p.id : null; }}")
    if not panel_id:
        raise AssertionError("no notebook is open in the current tab")
    return page.locator(f"[id='{panel_id}']")


def open_notebook(page, base_url: str, token: str, relpath: str) -> None:
    """Open `relpath` (relative to the lab root) and wait until its kernel is connected and idle."""
    # ?reset: start from an empty workspace, so notebooks of earlier tests are not restored beside it.
    page.goto(f"{base_url}/lab/tree/{relpath}?reset&token={token}", wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="visible", timeout=NOTEBOOK_TIMEOUT_MS)
    wait_kernel_ready(page, base_url, token, relpath)


def wait_kernel_ready(page, base_url: str, token: str, relpath: str, timeout_ms: int = KERNEL_TIMEOUT_MS):
    """The notebook's kernel exists on the server, the page holds a websocket to it, and it is idle.

    The toolbar indicator alone is not enough: it says "idle" before the kernel has even started, and a
    Run All clicked in that window does nothing.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    state = "no session yet"
    while True:
        try:
            req = urllib.request.Request(
                f"{base_url}/api/sessions", headers={"Authorization": f"token {token}"}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                sessions = json.loads(resp.read())
            kernel = next((s["kernel"] for s in sessions if s.get("path") == relpath), None)
            if kernel:
                state = f"kernel {kernel.get('execution_state')}, {kernel.get('connections')} connection(s)"
                if kernel.get("execution_state") == "idle" and kernel.get("connections", 0) >= 1:
                    break
        except (OSError, ValueError) as err:
            state = f"sessions API: {err}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernel for {relpath} not ready after {timeout_ms / 1000:.0f}s ({state})")
        time.sleep(0.25)
    # ...and the page itself has seen the kernel: the status bar names its state.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-StatusBar-Widget')]
               .some(w => /\\|\\s*Idle/.test(w.textContent))""",
        timeout=max(1_000, int((deadline - time.monotonic()) * 1000)),
        polling=250,
    )
    wait_kernel_idle(page)


def run_all_cells(page, attempts: int = 3) -> None:
    """Run > Run All Cells through the menu bar, on the notebook of the current tab.

    Returns once execution has begun (a cell was queued: its prompt showed "[*]"); follow with
    `wait_kernel_idle`. If no cell was queued after a while (the click landed before the notebook
    was ready), the menu is used again: nothing ran, so nothing runs twice.
    """
    # Every queued cell passes through "[*]" (set synchronously by JupyterLab), however fast it runs:
    # a MutationObserver sees it even if the count replaced it before we look.
    page.evaluate(
        f"""() => {{
            const panel = {CURRENT_PANEL};
            window.__pbQueued = false;
            if (window.__pbObserver) window.__pbObserver.disconnect();
            window.__pbObserver = new MutationObserver(records => {{
                for (const r of records) {{
                    const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
                    if (!el || !el.closest('.jp-InputPrompt')) continue;
                    if ([...r.addedNodes].some(n => (n.textContent || '').includes('[*]'))
                        || (r.type === 'characterData' && r.target.data.includes('[*]'))) {{
                        window.__pbQueued = true;
                    }}
                }}
            }});
            window.__pbObserver.observe(panel, {{subtree: true, childList: true, characterData: true}});
        }}"""
    )
    notebook = current_notebook(page)
    for attempt in range(1, attempts + 1):
        notebook.locator(".jp-Cell").first.click()
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        item = page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells"))
        item.first.click(timeout=10_000)
        try:
            page.wait_for_function("() => window.__pbQueued === true", timeout=15_000, polling=100)
            return
        except Exception:
            if attempt == attempts:
                raise AssertionError(f"Run All Cells queued no cell after {attempts} tries") from None


def wait_kernel_idle(page, timeout_ms: int = KERNEL_TIMEOUT_MS, prompts: bool = True) -> None:
    """Wait until the current notebook's kernel is idle and (`prompts`) no cell is queued or running ("[*]")."""
    page.wait_for_function(
        f"""(prompts) => {{
            const panel = {CURRENT_PANEL};
            if (!panel) return false;
            const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
            if (!ind || ind.getAttribute('data-status') !== 'idle') return false;
            return !prompts || ![...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .some(p => p.textContent.includes('[*]'));
        }}""",
        arg=prompts,
        timeout=timeout_ms,
        polling=250,
    )


def wait_for_cytoscape_canvas(page, timeout_ms: int = WIDGET_TIMEOUT_MS):
    """The first ipycytoscape widget that has drawn: returns a Locator on its container.

    Fails early with the widget's own text if JupyterLab shows "Error displaying widget".
    """
    page.wait_for_function(
        f"""() => {{
            const root = {CURRENT_PANEL} || document;
            if ([...root.querySelectorAll('.jp-OutputArea-output')]
                    .some(o => o.textContent.includes('Error displaying widget'))) return true;
            return [...root.querySelectorAll('.jp-OutputArea-output canvas')]
                .some(c => c.width > 0 && c.height > 0 && c.getBoundingClientRect().height > 0);
        }}""",
        timeout=timeout_ms,
        polling=250,
    )
    notebook = current_notebook(page)
    widget_errors = notebook.locator(".jp-OutputArea-output", has_text="Error displaying widget")
    if widget_errors.count():
        raise AssertionError(f"widget failed to render: {widget_errors.first.inner_text()}")
    canvas = notebook.locator(".jp-OutputArea-output canvas").first
    # ipycytoscape's view: the closest Lumino widget around Cytoscape's canvases.
    return canvas.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' lm-Widget ')][1]")


def canvas_ink(page) -> dict:
    """Pixel statistics of the canvases in the current notebook's outputs: painted pixels, colors."""
    return page.evaluate(
        f"""() => [...({CURRENT_PANEL} || document).querySelectorAll('.jp-OutputArea-output canvas')]
        .reduce((acc, c) => {{
            if (!c.width || !c.height) return acc;
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < data.length; i += 4) {{
                if (data[i + 3] > 0) {{
                    acc.painted++;
                    acc.colors[(data[i] >> 4) + '/' + (data[i + 1] >> 4) + '/' + (data[i + 2] >> 4)] = 1;
                }}
            }}
            acc.pixels += data.length / 4;
            return acc;
        }}, {{painted: 0, pixels: 0, colors: {{}}}})"""
    )


def screenshot(page, name: str, locator=None) -> bytes:
    """Save a PNG of the page (or of `locator`) as docs/screenshots/<name>.png and return its bytes."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name.removesuffix('.png')}.png"
    target = locator if locator is not None else page
    return target.screenshot(path=str(path))


# --- a tiny PNG reader, enough for Chromium's screenshots (8-bit RGB/RGBA, not interlaced) ----------


def hex_rgb(color: str) -> tuple[int, int, int]:
    """'#15803d' -> (21, 128, 61): compare a presentation colour with pixels or computed styles."""
    value = color.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode a PNG into (width, height, [(r, g, b), ...])."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, b""
    width = height = depth = ctype = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, color type {ctype}, interlace {interlace})")
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, pixels, i = bytearray(stride), [], 0
    for _ in range(height):
        filt, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if filt == 1:
                line[x] = (line[x] + a) & 0xFF
            elif filt == 2:
                line[x] = (line[x] + b) & 0xFF
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, bpp))
        prev = line
    return width, height, pixels
