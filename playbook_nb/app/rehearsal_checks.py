"""The checks `playbook-nb test` reports, OPS-001 style, for one rehearsed run:

    ✓ Assumption: source_data_validated
    ✓ Step: validate (19 valid, 1 errors)
    ✓ KPI: max_duration_seconds (0.4s <= 300s)
    ✓ Screenshot diff: entity-list 0.00% change (identical)
    ✓ Expected: kpis.entities_processed (19 == 19)

- assumptions: each `name: expected value` against the fixture's `assumptions` table (a sentence cannot be
  checked and is listed only); a missing or different value fails;
- steps: each node that ran, with a summary of its result; a NOK step fails;
- KPIs of this run: duration against `max_duration_seconds`, the share of steps that ended OK against
  `min_success_rate`, failed attempts among attempts against `max_error_rate`;
- screenshot diffs of ui_screenshot steps (a missing baseline fails: record one with --update-baselines);
- an acceptance scenario's `expected`: `kpis` (metrics the run published, or duration_seconds, success_rate,
  error_rate), `errors` (`count`, `type`), `screenshots` (name -> baseline file, compared with pixelmatch),
  with comparisons such as "<= 300", "> 0", "!= 0" or a plain value.
"""

from __future__ import annotations

import base64
import operator
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playbook_nb.domain.errors import PlaybookError

MARK = {True: "✓", False: "✗", None: "·"}
_COMPARISON = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPERATORS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
RUN_FIGURES = ("duration_seconds", "success_rate", "error_rate")


@dataclass
class Check:
    kind: str  # Assumption, Step, KPI, Screenshot diff, Expected
    name: str
    ok: bool | None  # None: listed, not checked
    detail: str = ""
    image: str | None = None  # a diff image as a data: URI (HTML report)

    @property
    def line(self) -> str:
        return f"{MARK[self.ok]} {self.kind}: {self.name}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "image": self.image,
        }


def compare_value(actual: Any, want: Any) -> tuple[bool, str]:
    """`want` is a comparison ("<= 300", "> 0") or a plain value; returns (holds, "actual OP expected")."""
    if isinstance(want, str):
        match = _COMPARISON.match(want)
        if match:
            op, bound = match.group(1), float(match.group(2))
            try:
                number = float(actual)
            except (TypeError, ValueError):
                return False, f"{actual!r} is not a number, expected {want.strip()}"
            return _OPERATORS[op](number, bound), f"{_fmt(number)} {op} {_fmt(bound)}"
    if isinstance(want, int | float) and not isinstance(want, bool) and isinstance(actual, int | float):
        return float(actual) == float(want), f"{_fmt(actual)} == {_fmt(want)}"
    return actual == want, f"{actual!r} == {want!r}"


def _fmt(number: Any) -> str:
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return f"{number:g}" if isinstance(number, float) else str(number)


# ---- what the run did -------------------------------------------------------------------------------------


@dataclass
class RunFacts:
    """What checks read from a rehearsed run (taken from the store before a throw-away index goes)."""

    status: str
    duration: float
    states: dict[str, str]
    attempts: list[Any]  # AttemptRow
    artifacts: list[dict]
    kinds: dict[str, str]  # node id -> "plugin.function" (Function nodes)

    def last_result(self, node_id: str) -> Any:
        rows = [a for a in self.attempts if a.node_id == node_id]
        return rows[-1].result if rows else None

    def metrics(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for node_id, kind in self.kinds.items():
            result = self.last_result(node_id)
            if kind == "metrics_publish.push" and isinstance(result, dict):
                found.update(result.get("metrics") or {})
        return found

    def step_success_rate(self) -> float | None:
        ran = [n for n in self.states if any(a.node_id == n for a in self.attempts)]
        if not ran:
            return None
        return sum(1 for n in ran if self.states[n] == "OK") / len(ran)

    def error_rate(self) -> float | None:
        if not self.attempts:
            return None
        return sum(1 for a in self.attempts if a.status != "OK") / len(self.attempts)

    def errors(self) -> list[dict[str, Any]]:
        """Schema errors the run found, and failed attempts."""
        found: list[dict[str, Any]] = []
        for node_id, kind in self.kinds.items():
            result = self.last_result(node_id)
            if kind == "schema_check.validate" and isinstance(result, dict):
                found.extend({"step": node_id, **e} for e in result.get("errors") or [])
        for attempt in self.attempts:
            if attempt.status != "OK":
                found.append({"step": attempt.node_id, "type": "step_failure", "message": attempt.error})
        return found

    def screenshots(self) -> dict[str, dict[str, Any]]:
        """name -> {node, screenshot (path or URL), diff} of the ui_screenshot steps that ran."""
        shots: dict[str, dict[str, Any]] = {}
        for node_id, kind in self.kinds.items():
            result = self.last_result(node_id)
            if kind == "ui_screenshot.capture" and isinstance(result, dict) and result.get("screenshot"):
                shots[result.get("name") or node_id] = {"node": node_id, **result}
        return shots


def step_summary(node_id: str, kind: str | None, state: str, result: Any, error: str | None) -> str:
    if state != "OK":
        return f"{state}" + (f": {error}" if error else "")
    if kind == "schema_check.validate" and isinstance(result, dict):
        return f"{result.get('valid_count', 0)} valid, {result.get('error_count', 0)} errors"
    if kind == "metrics_publish.push" and isinstance(result, dict):
        count = len(result.get("metrics") or {})
        return (
            f"{count} metrics published"
            if result.get("published")
            else f"{count} metrics, not pushed (rehearsal)"
        )
    if kind == "ui_screenshot.capture" and isinstance(result, dict):
        return f"screenshot {result.get('name')}: {(result.get('diff') or {}).get('status', 'captured')}"
    if kind and kind.startswith("http.") and result is not None:
        return _shape(result)
    return "ok"


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("data", "items", "entities", "results"):
            if key in value:
                return f"{key}: {_shape(value[key])}"
        if len(value) == 1:
            ((key, inner),) = value.items()
            return f"{key}: {_shape(inner)}"
        return f"{len(value)} fields"
    if isinstance(value, list):
        return f"{len(value)} items"
    return "ok"


# ---- the checks -------------------------------------------------------------------------------------------


def assumption_checks(runbook, facts_given: dict[str, Any]) -> list[Check]:
    checks = []
    for assumption in runbook.meta.assumptions:
        if not assumption.checkable:
            checks.append(Check("Assumption", assumption.name, None, "not checkable: a sentence"))
            continue
        if assumption.name not in facts_given:
            checks.append(Check("Assumption", assumption.name, False, "the fixture does not establish it"))
            continue
        ok, text = compare_value(facts_given[assumption.name], assumption.expected)
        checks.append(Check("Assumption", assumption.name, ok, "" if ok else f"fixture: {text}"))
    return checks


def step_checks(
    runbook, facts: RunFacts, expected_states: dict[str, str], run_expected: str | None
) -> list[Check]:
    """A step that ran and did not end OK fails the check, unless the scenario expects just that (its state,
    or a run that fails); a failure the run continued past (SKIPPED) is listed."""
    checks = []
    for node_id in runbook.nodes:
        rows = [a for a in facts.attempts if a.node_id == node_id]
        if not rows:
            continue
        state = facts.states.get(node_id, "")
        summary = step_summary(node_id, facts.kinds.get(node_id), state, rows[-1].result, rows[-1].error)
        if state == "OK" or expected_states.get(node_id) == state:
            ok: bool | None = True
        elif state == "SKIPPED" or run_expected in ("NOK", "ABORTED"):
            ok = None
        else:
            ok = False
        checks.append(Check("Step", node_id, ok, summary))
    return checks


def kpi_checks(runbook, facts: RunFacts) -> list[Check]:
    kpis = runbook.meta.kpis
    if kpis is None:
        return []
    checks = []
    if kpis.max_duration is not None:
        ok = facts.duration <= kpis.max_duration
        checks.append(
            Check(
                "KPI",
                "max_duration_seconds",
                ok,
                f"{facts.duration:.1f}s {'<=' if ok else '>'} {_fmt(kpis.max_duration)}s",
            )
        )
    rate = facts.step_success_rate()
    if kpis.target_success_rate is not None and rate is not None:
        ok = rate >= kpis.target_success_rate
        checks.append(
            Check(
                "KPI",
                "min_success_rate",
                ok,
                f"{rate:.3g} {'>=' if ok else '<'} {kpis.target_success_rate:g}",
            )
        )
    errors = facts.error_rate()
    if kpis.max_error_rate is not None and errors is not None:
        ok = errors <= kpis.max_error_rate
        checks.append(
            Check("KPI", "max_error_rate", ok, f"{errors:.3g} {'<=' if ok else '>'} {kpis.max_error_rate:g}")
        )
    return checks


def screenshot_checks(facts: RunFacts, read) -> list[Check]:
    checks = []
    for name, shot in facts.screenshots().items():
        diff = shot.get("diff") or {}
        status = diff.get("status")
        if status in ("identical", "within_threshold", "changed"):
            ok = status != "changed"
            verdict = {"identical": "identical", "within_threshold": "within threshold"}.get(
                status, "above threshold"
            )
            image = _data_uri(read, diff.get("image"))
            checks.append(
                Check("Screenshot diff", name, ok, f"{diff.get('percent')} change ({verdict})", image)
            )
        elif status == "baseline_updated":
            checks.append(Check("Screenshot diff", name, True, f"baseline written: {diff.get('baseline')}"))
        else:
            checks.append(
                Check(
                    "Screenshot diff",
                    name,
                    False,
                    f"no baseline at {diff.get('baseline')} (use --update-baselines)",
                )
            )
    return checks


def expected_checks(
    expected: dict[str, Any], facts: RunFacts, *, base_dir: Path, read, update_baselines: bool = False
) -> list[Check]:
    """An acceptance scenario's kpis / errors / screenshots expectations."""
    checks = []
    metrics = facts.metrics()
    figures = {
        "duration_seconds": round(facts.duration, 3),
        "success_rate": facts.step_success_rate(),
        "error_rate": facts.error_rate(),
    }
    for name, want in (expected.get("kpis") or {}).items():
        figure = figures.get(name)
        if name in metrics:
            actual = metrics[name]
        elif figure is not None:
            actual = figure
        else:
            known = ", ".join(sorted(metrics) + list(RUN_FIGURES)) or "none"
            checks.append(
                Check("Expected", f"kpis.{name}", False, f"no such metric in the run (known: {known})")
            )
            continue
        ok, text = compare_value(actual, want)
        checks.append(Check("Expected", f"kpis.{name}", ok, text))
    errors_expected = expected.get("errors")
    if errors_expected:
        errors = facts.errors()
        if "count" in errors_expected:
            ok, text = compare_value(len(errors), errors_expected["count"])
            checks.append(Check("Expected", "errors.count", ok, text))
        if "type" in errors_expected:
            types = sorted({str(e["type"]) for e in errors if e.get("type") is not None})
            ok = errors_expected["type"] in types
            checks.append(Check("Expected", "errors.type", ok, f"{errors_expected['type']} in {types}"))
    shots = facts.screenshots()
    for name, baseline_name in (expected.get("screenshots") or {}).items():
        checks.append(
            _expected_screenshot(name, base_dir / str(baseline_name), shots, read, update_baselines)
        )
    return checks


def _expected_screenshot(name, baseline: Path, shots, read, update_baselines) -> Check:
    import tempfile

    from playbook_nb.adapters.plugins.image_diff import DEFAULT_MAX_DIFF_RATIO, compare

    shot = shots.get(name)
    if shot is None:
        return Check("Expected", f"screenshots.{name}", False, f"no screenshot named {name} was taken")
    with tempfile.TemporaryDirectory(prefix="playbook-shot-") as tmp:
        capture = Path(tmp) / "capture.png"
        capture.write_bytes(read(shot["screenshot"]))
        if update_baselines:
            baseline.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(capture, baseline)
            return Check("Expected", f"screenshots.{name}", True, f"baseline written: {baseline}")
        if not baseline.is_file():
            return Check(
                "Expected", f"screenshots.{name}", False, f"no baseline {baseline} (use --update-baselines)"
            )
        threshold = float((shot.get("diff") or {}).get("threshold", DEFAULT_MAX_DIFF_RATIO))
        found = compare(capture, baseline, Path(tmp) / "diff.png")
        ok = found.ratio <= threshold
        image = "data:image/png;base64," + base64.b64encode(found.diff_path.read_bytes()).decode()
        detail = f"{found.percent} change against {baseline.name} (threshold {threshold * 100:g}%)"
        return Check("Expected", f"screenshots.{name}", ok, detail, image)


def _data_uri(read, url: str | None) -> str | None:
    if not url:
        return None
    try:
        return "data:image/png;base64," + base64.b64encode(read(url)).decode()
    except PlaybookError:
        return None
