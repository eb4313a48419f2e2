"""The OPS-001 acceptance pack under examples/: `test --pack` runs every scenario (HTTP answers from the
fixtures, schema checks and metrics for real, the UI page captured by the system Chromium and diffed against
its baseline), exit 0/1, with an HTML report holding each check and the diff images."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.browser
PACK = REPO / "examples" / "acceptance" / "entity_enrichment"


def test_the_example_pack_passes_with_a_report_of_each_check(tmp_path):
    report = tmp_path / "report.html"
    done = run_cli("test", "--pack", str(PACK), "--report", str(report), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for line in (
        "✓ Assumption: source_data_validated",
        "✓ Step: validate (19 valid, 1 errors)",
        "✓ Step: report (2 metrics, not pushed (rehearsal))",
        "✓ Screenshot diff: entity-list (0.00% change (identical))",
        "✓ Expected: kpis.entities_processed (19 == 19)",
        "✓ Expected: errors.type (schema_validation in ['schema_validation'])",
        "2/2 cases passed",
    ):
        assert line in lines, line
    html = report.read_text()
    assert "PASS</span>" in html and "Per IC Policy 12.3" in html and 'src="data:image/png;base64,' in html


def test_a_changed_ui_and_an_unmet_expectation_fail_the_pack(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    page = pack / "fixtures" / "entity-list.html"
    page.write_text(page.read_text().replace("#2b6cb0", "#c53030").replace("risk 5", "risk 9 (changed)"))
    (pack / "expected" / "happy-path.yml").write_text(
        (pack / "expected" / "happy-path.yml")
        .read_text()
        .replace("entities_processed: 19", 'entities_processed: "> 100"')
    )
    done = run_cli("test", "--pack", str(pack), timeout=180)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("✗ Screenshot diff: entity-list (") and "above threshold" in line for line in lines
    )
    assert "✗ Expected: kpis.entities_processed (19 > 100)" in lines
    assert "0/2 cases passed" in lines
    # baselines change only on purpose
    baseline = pack / "screenshots" / "entity-list.png"
    before = baseline.read_bytes()
    assert before == (PACK / "screenshots" / "entity-list.png").read_bytes()
    updated = run_cli("test", "--pack", str(pack), "--update-baselines", timeout=180)
    assert "baseline written" in updated.stdout and baseline.read_bytes() != before
