"""ui_screenshot: a real page served on 127.0.0.1, captured by the system Chromium through Playwright, compared
with its baseline by pixelmatch. One Chromium serves every capture of the test process."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.app.inputs import load_runbook
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.app.step_files import load_artifacts
from tests.browser.lab import SCREENSHOTS
from tests.local_servers import PageServer, entity_page

pytestmark = pytest.mark.browser

RUNBOOK = """[runbook]
title = "ui check"

[shot]
type = "Function"
plugin = "ui_screenshot"
function = "capture"
function_params = {{ url = "{url}/entities", selector = "#entity-list", viewport = "640x480", name = "entity-list" }}
outputs = {{ screenshot_path = "$.screenshot", diff_status = "$.diff.status" }}
"""


def run_once(tmp_path, store, *, update_baselines=False):
    runbook = load_runbook(tmp_path / "ui.playbook.toml")
    options = RunOptions(headless=True, update_baselines=update_baselines)
    session = RunSession.start(runbook, {}, store, options, namespace={}, executor=LocalExecutor())
    session.drive(lambda *_: None)
    session.close()
    attempt = store.attempts(session.run_id, "shot")[-1]
    return session.run_id, attempt, load_artifacts(store, session.run_id)


def test_baseline_then_identical_then_a_visual_regression_fails_with_a_diff_image(tmp_path):
    rows = ["alpha  risk 5", "beta  risk 4", "gamma  risk 5"]
    with (
        PageServer(pages={"/entities": entity_page(rows)}) as server,
        Store.open(tmp_path / "runs.db") as store,
    ):
        (tmp_path / "ui.playbook.toml").write_text(RUNBOOK.format(url=server.url))
        baseline = tmp_path / "screenshots" / "entity-list.png"

        run_id, attempt, artifacts = run_once(tmp_path, store)
        assert attempt.status == "OK" and attempt.result["diff"]["status"] == "no_baseline"
        assert [a["name"] for a in artifacts] == ["entity-list.png"]
        assert not baseline.exists()  # never written unless asked
        with Image.open(artifacts[0]["url"]) as shot:
            assert (
                shot.size[0] == 348 and shot.size[1] < 480
            )  # the element (320 + padding + border), not the page

        run_once(tmp_path, store, update_baselines=True)
        assert baseline.is_file()

        run_id, attempt, artifacts = run_once(tmp_path, store)
        diff = attempt.result["diff"]
        assert attempt.status == "OK" and diff["status"] == "identical" and diff["changed_pixels"] == 0
        assert diff["percent"] == "0.00%"
        assert sorted(a["name"] for a in artifacts) == ["entity-list.diff.png", "entity-list.png"]
        assert all(a["url"].startswith(str(store.artifact_dir(run_id))) for a in artifacts)

        server.pages["/entities"] = entity_page(rows[:2] + ["gamma  risk 9 (changed)"], colour="#c53030")
        run_id, attempt, artifacts = run_once(tmp_path, store)
        diff = attempt.result["diff"]
        assert attempt.status == "NOK" and diff["status"] == "changed" and diff["ratio"] > 0.01
        assert attempt.error.startswith("ScreenshotChanged: screenshot 'entity-list' changed: ")
        assert f"{diff['percent']} of the pixels differ from entity-list.png (threshold 1%)" in attempt.error
        image = next(a["url"] for a in artifacts if a["name"] == "entity-list.diff.png")
        assert diff["image"] == image
        with Image.open(image) as img:
            red = dict((colour, n) for n, colour in img.convert("RGB").getcolors(1 << 24)).get((255, 0, 0), 0)
        assert red == diff["changed_pixels"]  # pixelmatch paints each changed pixel red
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, SCREENSHOTS / "ui_screenshot_diff.png")
        shot = next(a["url"] for a in artifacts if a["name"] == "entity-list.png")
        shutil.copyfile(shot, SCREENSHOTS / "ui_screenshot_changed.png")


def test_a_regression_shows_its_diff_image_in_the_notebook_cell_and_the_html_report(tmp_path):
    """Headless (papermill): the executed notebook's cell of the screenshot step holds the diff image, and the
    HTML report embeds it under the attempt; the baseline is left as it was."""
    import base64

    import nbformat

    from tests.conftest import run_cli

    rows = ["alpha  risk 5", "beta  risk 4", "gamma  risk 5"]
    baseline = tmp_path / "screenshots" / "entity-list.png"
    baseline.parent.mkdir()
    Image.new("RGB", (348, 120), "white").save(baseline)  # a page that looked nothing like today's
    before = baseline.read_bytes()
    db, executed = tmp_path / "runs.db", tmp_path / "executed.ipynb"
    with PageServer(pages={"/entities": entity_page(rows)}) as server:
        (tmp_path / "ui.playbook.toml").write_text(RUNBOOK.format(url=server.url))
        done = run_cli(
            "run", str(tmp_path / "ui.playbook.toml"), "--headless", "--state-path", str(db),
            "-o", str(executed), timeout=240,
        )  # fmt: skip
    assert "shot                         SKIPPED  skipped by policy" in done.stdout, done.stdout + done.stderr
    assert baseline.read_bytes() == before  # a run never writes baselines
    with Store.open(db) as store:
        (run,) = store.list_runs()
        attempt = store.attempts(run.id, "shot")[-1]
        assert attempt.status == "NOK" and "screenshot 'entity-list' changed: " in attempt.error
        diff_url = next(
            a["url"] for a in load_artifacts(store, run.id) if a["name"] == "entity-list.diff.png"
        )
        with store.open_artifact(diff_url) as handle:
            diff_png = handle.read()
    notebook = nbformat.read(executed, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "%playbook_node shot" in c.source)
    images = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
    assert diff_png in [base64.b64decode(i) for i in images]  # the pixelmatch diff, under the step's cell
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "artifact entity-list.diff.png: " + diff_url in text
    from playbook_nb.adapters.export.report import render_report

    with Store.open(db) as store:  # what `export --html` writes
        page = render_report(store, run.id)
    assert (
        '<figure class="artifact" data-name="entity-list.diff.png"><img alt="entity-list.diff.png" ' in page
    )
    assert f'src="data:image/png;base64,{base64.b64encode(diff_png).decode()}"' in page
