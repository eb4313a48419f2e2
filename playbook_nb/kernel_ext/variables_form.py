"""The variables form at the top of the cockpit (issue 17.5).

In JupyterLab every run of a runbook that has `[variables]` shows this form above its graph, generated from
them. When the notebook is run with variables that are missing or refused (a required variable with no value,
a value outside its choices, min, max or pattern), the setup cell does not raise: the form shows open, with
the problem, and no run starts. Each field is checked as it is typed by the one checker
(`playbook_nb.domain.variables.check_value`); a refused value shows its message under the form and keeps Run
disabled. Run starts the run with the form's values and shows the cockpit below the form.

Once a run has started (from the form, or from the parameters cell's values), the form is compact: one line
with the run's values and "Change values". Opened, its "Start a new run" starts a fresh run with the edited
values in place of the one shown (a run still RUNNING with no step in flight is recorded ABORTED, resumable,
with the reason; while a step runs the form refuses in one line). The parameters cell and papermill are
unchanged: a headless run shows no form.

Fields: `choices` -> dropdown, `bool` -> checkbox, `int`/`float` -> a number field (min/max checked),
`secret` -> a password field whose value is cleared as soon as Run has read it, so it is never part of the
widget state saved in the notebook file. Node and summary cells run before Run say that the run waits for the
form and return (Run All never hangs, never shows a traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from playbook_nb.domain.engine import RunState
from playbook_nb.domain.errors import PlaybookError, VariableError
from playbook_nb.domain.model import Runbook, Variable
from playbook_nb.domain.values import to_text
from playbook_nb.domain.variables import check_value
from playbook_nb.kernel_ext.kernel_thread import on_this_thread

WAITING = "the run has not started: fill in the variables form under the setup cell and press Run"


class VariablesForm:
    """Stands in for the NotebookRun (`current()`) until Run starts the run; `start(values)` returns it."""

    def __init__(
        self,
        runbook: Runbook,
        given: dict[str, Any],
        problem: str,
        start: Callable[[dict[str, Any]], Any],
        secrets_from_env: dict[str, str] | None = None,
        *,
        started: Any = None,
    ):
        """`started`: the run already open with `given` (the form then shows compact above its cockpit)."""
        self.secrets_from_env = dict(secrets_from_env or {})
        self.runbook = runbook
        self._start = start
        self.started: Any = None
        self.fields: dict[str, widgets.Widget] = {}
        self.errors: dict[str, str] = {}
        problem = problem.split(" (pass --var")[0]  # the CLI's hint; here the answer is the form below
        self.problem = widgets.HTML(f"<b>{_esc(problem)}</b>", layout=widgets.Layout(margin="0 0 6px 0"))
        self.problem.add_class("pb-vars-problem")
        rows = []
        for name, var in runbook.variables.items():
            field = _field(var, given.get(name), self.secrets_from_env.get(name))
            field.observe(on_this_thread(lambda _change, n=name: self._check(n)), names="value")
            field.add_class(f"pb-var-{name}")
            self.fields[name] = field
            rows.append(field)
        self.message = widgets.HTML("")
        self.message.add_class("pb-vars-message")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("pb-vars-run")
        self.run_button.on_click(on_this_thread(lambda _b: self.run()))
        self.toggle = widgets.Button(
            description="Change values", icon="pencil", layout=widgets.Layout(width="auto")
        )
        self.toggle.add_class("pb-vars-toggle")
        self.toggle.on_click(on_this_thread(lambda _b: self._toggle()))
        # The run the form started: its run-record line in `output`, its cockpit a child of `slot`. The cockpit
        # is never displayed inside the Output widget: a second tab restores an Output's text but not a widget
        # displayed into it, so it would see no graph.
        self.output = widgets.Output()
        self.slot = widgets.VBox([])
        title = widgets.HTML(f"<b>Variables of {_esc(runbook.meta.title or 'this runbook')}</b>")
        self.fields_box = widgets.VBox([*rows, self.message, self.run_button])
        self.panel = widgets.VBox(
            [
                widgets.HBox([title, self.toggle], layout=widgets.Layout(align_items="center")),
                self.problem,
                self.fields_box,
            ],
            layout=widgets.Layout(border="1px solid #f0ad4e", padding="8px"),
        )
        self.panel.add_class("pb-vars-form")
        self.box = widgets.VBox([self.panel, self.output, self.slot])
        for name in self.fields:
            self._check(name, refresh=False)
        if started is not None:
            self._compact(started)
        else:
            self.toggle.layout.display = "none"
            self._refresh()

    # -- what the notebook's cells call before the run starts ------------------------------------
    def show(self) -> None:
        display(self.box)

    def cell(self, node_id: str, code: str | None = None) -> None:
        if self.started is not None:
            return self.started.cell(node_id, code=code)
        print(WAITING)
        return None

    async def cell_async(self, node_id: str) -> None:
        if self.started is not None:
            return await self.started.cell_async(node_id)
        print(WAITING)
        return None

    def summary(self) -> None:
        if self.started is not None:
            return self.started.summary()
        print(WAITING)
        return None

    # -- the form --------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The form's values as text the run's resolver converts (empty optional fields left out)."""
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            raw = field.value
            if isinstance(raw, bool):
                out[name] = "true" if raw else "false"
            elif raw is None or raw == "":
                continue
            else:
                out[name] = str(raw)
        return out

    def _check(self, name: str, refresh: bool = True) -> None:
        var = self.runbook.variables[name]
        raw = self.fields[name].value
        self.errors.pop(name, None)
        if raw is None or raw == "":
            if var.required and not var.has_default and name not in self.secrets_from_env:
                self.errors[name] = f"variable {name}: required"
        else:
            try:
                check_value(var, "true" if raw is True else "false" if raw is False else str(raw))
            except VariableError as err:
                self.errors[name] = str(err)
        if refresh:
            self._refresh()

    def _refresh(self) -> None:
        self.run_button.disabled = bool(self.errors)
        self.message.value = "".join(
            f'<div style="color:#c9302c">{_esc(text)}</div>'
            for name in self.fields
            if (text := self.errors.get(name))
        )

    def run(self) -> Any:
        """Run / Start a new run: start a run with the form's values, show its cockpit below the form."""
        if self.errors:
            return None
        previous = self.started
        busy = previous is not None and _step_in_flight(previous)
        if busy:
            self.message.value = _red(
                f"run {previous.session.run_id} is running a step: wait for it to end (or Abort the run) "
                "before starting a new one"
            )
            return None
        values = self.values()
        for name, var in self.runbook.variables.items():  # the secret never stays in the widget state
            if var.secret or name in self.runbook.secret_names:
                self.fields[name].value = ""
        try:
            started = self._start(values)
        except PlaybookError as err:
            self.message.value = _red(str(err))
            return None
        if previous is not None:
            _replace(previous, started)
        started.variables_form = self
        self.output.clear_output()
        with self.output:
            started.show_cockpit(into=self.slot)
        self._compact(started)
        return started

    def _compact(self, started: Any) -> None:
        """A run is open: the form shrinks to one line of its values; "Change values" opens it again."""
        self.started = started
        shown = []
        for name, var in self.runbook.variables.items():
            if var.secret or name in self.runbook.secret_names:
                env = self.secrets_from_env.get(name)
                shown.append(f"{name} = (secret{', from $' + env if env else ''})")
            else:
                value = self.fields[name].value
                shown.append(f"{name} = {to_text(value) if value not in (None, '') else '(none)'}")
        self.problem.value = (
            f"run {started.session.run_id} started with: <code>{_esc(' · '.join(shown))}</code>"
        )
        self.run_button.description = "Start a new run"
        self.toggle.layout.display = None
        for name in self.fields:
            self._check(name, refresh=False)
        self._refresh()
        self._expand(False)

    def _toggle(self) -> None:
        self._expand(self.fields_box.layout.display == "none")

    def _expand(self, open_: bool) -> None:
        self.fields_box.layout.display = None if open_ else "none"
        self.toggle.description = "Hide" if open_ else "Change values"


def _step_in_flight(run: Any) -> bool:
    session = run.session
    return session.status is RunState.RUNNING and (
        bool(session.abort_switch.in_flight) or "RUNNING" in session.states().values()
    )


def _replace(previous: Any, started: Any) -> None:
    """The run the form replaced: still RUNNING (nothing in flight), it is recorded ABORTED (resumable) with
    the reason; a finished one stays as it is."""
    session = previous.session
    if session.status is RunState.RUNNING and not session.watch_only:
        session.abort(None, f"replaced by run {started.session.run_id}, started from the variables form")


def _red(text: str) -> str:
    return f'<div style="color:#c9302c">{_esc(text)}</div>'


def _field(var: Variable, given: Any, env: str | None = None) -> widgets.Widget:
    label = var.name + (" *" if var.required and not var.has_default else "")
    value = given if given is not None else var.default
    common: dict[str, Any] = {
        "description": label,
        "style": {"description_width": "160px"},
        "layout": widgets.Layout(width="480px"),
    }
    if var.description:
        common["tooltip"] = var.description
    if var.secret:
        hint = f"from ${env} unless typed here" if env else "secret: not saved in the notebook"
        return widgets.Password(value="", placeholder=hint, **common)
    if var.choices:
        options = [to_text(choice) for choice in var.choices]
        current = to_text(value) if value is not None else None
        if current not in options:
            options = ["", *options]
            current = ""
        return widgets.Dropdown(options=options, value=current, **common)
    if var.type == "bool":
        checked = value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
        return widgets.Checkbox(value=bool(checked), indent=False, **common)
    text = "" if value is None else to_text(value)
    placeholder = []
    if var.type in ("int", "float"):
        placeholder.append(var.type)
        if var.min is not None:
            placeholder.append(f"min {var.min:g}")
        if var.max is not None:
            placeholder.append(f"max {var.max:g}")
    if var.pattern:
        placeholder.append(f"matches {var.pattern}")
    return widgets.Text(value=text, placeholder=", ".join(placeholder), continuous_update=True, **common)


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=False)
