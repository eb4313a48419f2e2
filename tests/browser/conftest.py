"""Real-browser fixtures: one isolated JupyterLab server and one headless Chromium for this directory.

Fixtures (all tests in this directory are marked `browser` automatically):

- `lab_server` (package) -> LabServer: `.base_url`, `.token`, `.root_dir` (write notebooks here), `.port`,
  `.extra_env` (PLAYBOOK_DB_PATH / PLAYBOOK_ARTIFACTS_URL: the run index its API and kernels use)
- `lab_root` (function) -> Path: the server's root dir (same as `lab_server.root_dir`)
- `browser` (package) -> playwright.sync_api.Browser on Debian's /usr/bin/chromium
- `page` (function) -> playwright.sync_api.Page in a fresh context (1400x900), closed after the test
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.frames import KernelFrames
from tests.browser.lab import CHROMIUM, CHROMIUM_ARGS, LabServer

BROWSER_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group("browser"))


def pytest_runtest_setup(item):
    """Under `--dist loadgroup` (scripts/test.sh) a browser test must carry xdist's group suffix: without it the
    two workers each start a lab and a Chromium and the browser tests compete for the two cores. pytest 9.2 broke
    that suffix without a word (pytest-xdist#1386); this fails the test saying so instead."""
    if getattr(item.config.option, "loadgroup", False) and not item.nodeid.endswith("@browser"):
        pytest.fail(
            f"--dist loadgroup did not put {item.nodeid} in the browser group: pytest {pytest.__version__} and"
            " this pytest-xdist drop the xdist_group mark (pytest-xdist#1386); see the pin in pyproject.toml",
            pytrace=False,
        )


def _require_chromium() -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set PLAYBOOK_NB_CHROMIUM)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# Package scope: both end with the last browser test. Playwright's sync API keeps its asyncio loop marked
# running in this thread while it lives, and pytest-jupyter's fixtures (tests/server) then fail with "This
# event loop is already running".
@pytest.fixture(scope="package")
def lab_server(tmp_path_factory) -> LabServer:
    base = tmp_path_factory.mktemp("jupyterlab")
    # The server's REST API and the kernels of runbook notebooks use this index (and the CLI runs of the
    # tests that name it), never the user's own.
    index = {
        "PLAYBOOK_DB_PATH": str(base / "index" / "runs.db"),
        "PLAYBOOK_ARTIFACTS_URL": str(base / "artifacts"),
    }
    server = LabServer(root_dir=base / "root", home=base / "home", extra_env=index)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lab_root(lab_server) -> Path:
    return lab_server.root_dir


@pytest.fixture(scope="package")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test reports a screenshot path, open dialogs, console tail and server log."""
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("page")
    if report.when == "call" and report.failed and page is not None:
        report.sections.append(("browser", _explain_failure(page, item)))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.playbook_console = []  # last browser console lines, for failure reports
    page.on("console", lambda msg: page.playbook_console.append(f"{msg.type}: {msg.text}"))
    page.playbook_frames = KernelFrames()  # every kernel websocket message, for failure reports
    page.on("websocket", page.playbook_frames.watch)
    try:
        yield page
    finally:
        context.close()


def _explain_failure(page, item) -> str:
    """What a failed browser test saw: a screenshot, open dialogs, the console's tail, the kernel websocket
    messages, the server's kernels and their main threads, the lab log and the kernel watchdog's reports
    (tests/browser/kernel_watchdog.py); the long parts in files beside the screenshot."""
    server = item.funcargs.get("lab_server")
    shot = Path(tempfile.mkdtemp(prefix="playbook-nb-browser-")) / f"{item.name}.png"
    lines = [f"page url: {page.url}"]
    try:
        page.screenshot(path=str(shot))
        lines.append(f"failure screenshot: {shot}")
        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        if dialogs:
            lines.append(f"open dialogs: {dialogs}")
    except Exception as err:  # the page may be gone; report what we can
        lines.append(f"(no screenshot: {err})")
    lines += ["browser console (last 20 lines):", *getattr(page, "playbook_console", [])[-20:]]
    frames = getattr(page, "playbook_frames", None)
    if frames is not None:
        lines += frames.report(shot.with_suffix(".frames.txt"))
    if server is not None:
        lines += server.kernels_now(shot.with_suffix(".kernels.txt"))
        kept = shot.with_suffix(".lab.log")
        with contextlib.suppress(OSError):
            shutil.copyfile(server.log_path, kept)
        log = server.log_tail(100_000)
        lines += [f"jupyter lab log (all of it: {kept}; the last 40 lines):", *log.splitlines()[-40:]]
        stalls = log.split("[kernel watchdog ")[1:]
        if stalls:  # where a kernel's main loop was stuck
            lines += [f"kernel watchdog ({len(stalls)} report(s); the last 3):"]
            lines += ["[kernel watchdog " + "\n".join(stall.splitlines()[:45]) for stall in stalls[-3:]]
    return "\n".join(lines)
