"""The HTML post-mortem opens offline in Chromium: the DAG is drawn, and no request leaves the machine.

Saves docs/screenshots/report_overview.png (header and DAG) and report_timeline.png (timeline and nodes).
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, run_cli

from playbook_nb.presentation import look
from tests.browser.lab import hex_rgb, png_pixels, screenshot

DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of a real headless run of the deploy pipeline whose health check fails (rollback runs)."""
    root = tmp_path_factory.mktemp("report")
    db = root / "runs.db"
    run = run_cli(
        "run", str(DEPLOY), "--headless", "--var", "ENVIRONMENT=staging", "--var", "HEALTHY=false",
        "--approve", "approve_deploy", "--actor", "alice@example.com", "--comment", "CHG-42 approved in standup",
        "--state-path", str(db), timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    out = root / "report.html"
    export = run_cli("export", "1", "--html", str(out), "--state-path", str(db))
    assert export.returncode == 0, export.stdout + export.stderr
    return out


def _color_share(pixels, rgb, tolerance=6) -> float:
    hits = sum(1 for p in pixels if all(abs(a - b) <= tolerance for a, b in zip(p, rgb, strict=True)))
    return hits / len(pixels)


def test_report_renders_offline_with_the_dag(page, report):
    requests: list[str] = []
    blocked: list[str] = []

    def route(route):
        url = route.request.url
        requests.append(url)
        if url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", route)
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")

    svg = page.locator(".dag svg")
    svg.wait_for(state="visible")
    box = svg.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300
    nodes = page.locator(".dag svg g.node")
    assert nodes.count() == 9
    assert page.locator('.dag svg g.node[data-node-id="rollback"]').get_attribute("data-state") == "ok"
    assert (
        page.locator('.dag svg g.node[data-node-id="health_check"]').get_attribute("data-state") == "skipped"
    )
    # the node boxes are really painted (not an empty or collapsed SVG)
    rollback_box = page.locator('.dag svg g.node[data-node-id="rollback"] rect').bounding_box()
    assert rollback_box and rollback_box["width"] > 100

    # timeline bars laid out by time: later attempts sit further right
    bars = page.locator(".tl-bar.attempt-bar")
    assert bars.count() >= 6
    build = page.locator('.tl-row[data-node="build_app"] .tl-bar').bounding_box()
    notify = page.locator('.tl-row[data-node="notify_failure"] .tl-bar').bounding_box()
    assert build and notify and notify["x"] > build["x"] + 100

    assert page.locator("#decisions").inner_text().count("alice@example.com") == 1
    assert "Hash chain verified" in page.locator("#chain-result").inner_text()

    assert requests and all(url.startswith("file://") for url in requests), requests
    assert blocked == []

    page.set_viewport_size({"width": 1400, "height": 1500})
    png = screenshot(page, "report_overview")
    width, height, pixels = png_pixels(png)
    assert (width, height) == (1400, 1500)
    assert _color_share(pixels, hex_rgb(look("OK").fill)) > 0.005  # OK nodes' green fill is on screen
    screenshot(page, "report_timeline", page.locator(".timeline"))
