"""The built-in `ui_screenshot` plugin (OPS-001 step type `ui_screenshot`): a Playwright screenshot in the
system Chromium, compared with a baseline by pixelmatch.

`capture(url, selector?, viewport?, name?, baseline?, threshold?, ...)` opens `url` in a fresh browser context
of the process's shared Chromium, waits for `selector` (or `wait_for`) and takes a PNG of that element (or of
the page). The capture is an artifact of the run (`<name>.png`). The baseline is `screenshots/<name>.png` next
to the runbook (`name` defaults to the step id) unless `baseline` names another file:

- baseline present: pixelmatch counts the changed pixels and writes `<name>.diff.png` (an artifact too); more
  than `threshold` (a fraction, default 0.01 = 1 % of the pixels) fails the step, with the figures kept as
  the attempt's result;
- no baseline: the step passes and says so (`diff.status = "no_baseline"`);
- `context.update_baselines` (`playbook-nb test --update-baselines`): the capture becomes the baseline.

In a rehearsal the fixture stands in for the application: `page` (an HTML file, opened and captured for real)
or `screenshot` (a PNG taken as the capture).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from playbook_nb.adapters.plugins.base import (
    FunctionSignature,
    ParameterDef,
    Plugin,
    PluginMetadata,
    StepContext,
)
from playbook_nb.adapters.plugins.image_diff import DEFAULT_MAX_DIFF_RATIO, DEFAULT_PIXEL_THRESHOLD, compare
from playbook_nb.domain.errors import PluginError

DEFAULT_VIEWPORT = (1280, 720)
DEFAULT_TIMEOUT = 30.0
BASELINE_DIR = "screenshots"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ScreenshotChanged(RuntimeError):
    """The capture differs from its baseline by more than the threshold; `result` keeps the figures."""

    show_traceback = False

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


class UiScreenshotPlugin(Plugin):
    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="ui_screenshot",
            version="1.0.0",
            author="playbook-nb",
            description="Screenshot a page or element in Chromium (Playwright); pixelmatch diff against a baseline",
            functions={
                "capture": FunctionSignature(
                    name="capture",
                    description="Capture a screenshot and compare it with its baseline",
                    parameters={
                        "url": ParameterDef(type="str", required=True, description="Page to open"),
                        "selector": ParameterDef(
                            type="str", description="CSS selector of the element to capture"
                        ),
                        "viewport": ParameterDef(type="any", description='"1280x720" or {width, height}'),
                        "name": ParameterDef(
                            type="str", description="Screenshot name (default: the step id)"
                        ),
                        "baseline": ParameterDef(
                            type="str", description="Baseline PNG (default screenshots/NAME.png)"
                        ),
                        "threshold": ParameterDef(
                            type="float",
                            default=DEFAULT_MAX_DIFF_RATIO,
                            description="Max share of changed pixels",
                        ),
                        "pixel_threshold": ParameterDef(
                            type="float",
                            default=DEFAULT_PIXEL_THRESHOLD,
                            description="pixelmatch colour threshold",
                        ),
                        "wait_for": ParameterDef(
                            type="str", description="Selector to wait for before capturing"
                        ),
                        "full_page": ParameterDef(
                            type="bool", default=False, description="Whole scrollable page"
                        ),
                        "timeout": ParameterDef(type="float", default=DEFAULT_TIMEOUT, description="Seconds"),
                    },
                    returns="{screenshot, name, diff}",
                )
            },
        )

    def initialize(self, config: dict[str, Any]) -> None:
        self.config = dict(config or {})

    def rehearses(self, spec: dict[str, Any]) -> bool:
        return "page" in spec or "screenshot" in spec

    def execute(self, function_name: str, params: dict[str, Any]) -> Any:
        if function_name != "capture":
            raise PluginError(
                f"plugin 'ui_screenshot' has no function '{function_name}' (available: capture)"
            )
        context = self.context
        if context is None:
            raise PluginError("plugin 'ui_screenshot' needs a step context")
        name = params.get("name") or context.node_id or "screenshot"
        if not _SAFE_NAME.match(name):
            raise PluginError(
                f"plugin 'ui_screenshot': name {name!r} must be letters, digits, '.', '_' or '-'"
            )
        shot = context.artifact_path(f"{name}.png")
        url = params["url"]
        rehearsal = context.rehearsal
        if rehearsal is not None and "screenshot" in rehearsal:
            shutil.copyfile(rehearsal["screenshot"], shot)
            print(f"rehearsal: the fixture's screenshot {rehearsal['screenshot']} stands in for {url}")
        else:
            if rehearsal is not None:
                url = Path(rehearsal["page"]).resolve().as_uri()
                print(f"rehearsal: the fixture's page {rehearsal['page']} stands in for {params['url']}")
            _capture(url, params, shot)
            print(f"captured {params.get('selector') or 'the page'} of {url}")
        result: dict[str, Any] = {"screenshot": str(shot), "name": name, "url": params["url"]}
        result["diff"] = self._diff(name, shot, params)
        return result

    def _diff(self, name: str, shot: Path, params: dict[str, Any]) -> dict[str, Any]:
        context = self.context or StepContext()  # the executor sets it; alone: the cwd and a scratch folder
        baseline = context.resolve(params.get("baseline") or f"{BASELINE_DIR}/{name}.png")
        threshold = float(params.get("threshold", DEFAULT_MAX_DIFF_RATIO))
        info: dict[str, Any] = {"baseline": str(baseline), "threshold": threshold}
        if context.update_baselines:
            baseline.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, baseline)
            print(f"baseline updated: {baseline}")
            return {**info, "status": "baseline_updated"}
        if not baseline.is_file():
            print(f"no baseline at {baseline} (record one with: playbook-nb test ... --update-baselines)")
            return {**info, "status": "no_baseline"}
        found = compare(
            shot,
            baseline,
            context.artifact_path(f"{name}.diff.png"),
            pixel_threshold=float(params.get("pixel_threshold", DEFAULT_PIXEL_THRESHOLD)),
        )
        status = "identical" if found.changed_pixels == 0 else "within_threshold"
        if found.ratio > threshold:
            status = "changed"
        info.update(
            status=status,
            changed_pixels=found.changed_pixels,
            total_pixels=found.total_pixels,
            ratio=found.ratio,
            percent=found.percent,
            image=str(found.diff_path),
            size=list(found.size),
            baseline_size=list(found.baseline_size),
        )
        line = f"screenshot diff: {found.percent} of {found.total_pixels} pixels changed"
        print(line + f" (threshold {threshold * 100:g}%)")
        if status == "changed":
            result = {"screenshot": str(shot), "name": name, "url": params["url"], "diff": info}
            raise ScreenshotChanged(
                f"screenshot '{name}' changed: {found.percent} of the pixels differ from {baseline.name} "
                f"(threshold {threshold * 100:g}%)",
                result,
            )
        return info

    def cleanup(self) -> None:
        pass


def _viewport(value: Any) -> dict[str, int]:
    if value is None:
        return {"width": DEFAULT_VIEWPORT[0], "height": DEFAULT_VIEWPORT[1]}
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if match:
            return {"width": int(match.group(1)), "height": int(match.group(2))}
    if isinstance(value, dict) and {"width", "height"} <= set(value):
        try:
            return {"width": int(value["width"]), "height": int(value["height"])}
        except (TypeError, ValueError):
            pass
    raise PluginError(
        f"plugin 'ui_screenshot': viewport must be like \"1280x720\" or {{width, height}}, got {value!r}"
    )


def _capture(url: str, params: dict[str, Any], path: Path) -> None:
    from playbook_nb.adapters.plugins.browser import shared_browser

    viewport = _viewport(params.get("viewport"))
    timeout_ms = float(params.get("timeout", DEFAULT_TIMEOUT)) * 1000
    selector, wait_for = params.get("selector"), params.get("wait_for")

    def job(browser) -> None:
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        try:
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            page.goto(url, wait_until="load")
            if wait_for:
                page.wait_for_selector(wait_for, state="visible")
            if selector:
                page.locator(selector).first.screenshot(path=str(path), animations="disabled")
            else:
                page.screenshot(
                    path=str(path), full_page=bool(params.get("full_page")), animations="disabled"
                )
        finally:
            context.close()

    try:
        shared_browser().run(job, timeout=timeout_ms / 1000 * 2 + 30)
    except PluginError:
        raise
    except Exception as exc:  # Playwright's TimeoutError / Error: one line for the user
        message = " ".join(str(exc).split("\n")[0].split())
        raise PluginError(f"plugin 'ui_screenshot': {url}: {message}") from None
