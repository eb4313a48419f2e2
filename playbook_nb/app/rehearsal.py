"""Rehearsal: run a runbook against a fixture instead of the world (`playbook-nb test`).

The real engine and session run; only the executor is replaced by one that answers from the fixture, so no
command, function or Python code executes. Gates are decided as the fixture says. The final node and run states
are then compared with what the fixture (or an expected file) expects.

Fixture (TOML or JSON)::

    [variables]                 # values for the runbook's variables (secrets too: nothing leaves the rehearsal)
    ENVIRONMENT = "staging"

    [nodes.build_app]           # a node not listed: status ok, empty output
    status = "ok"               # ok | nok, or a list for successive attempts: ["nok", "ok"] (the last repeats)
    stdout = "built myapp"      # outputs declared by the node are taken from it as in a real run ...
    outputs = { used_pct = "93" }   # ... unless given here
    exit_code = 1               # default 0 for ok, 1 for nok
    stderr = ""
    error = "unhealthy"         # default "exit code N" for a nok attempt
    return_value = { rows = 3 } # Function/Python nodes

    [nodes.ingest]              # a built-in step type runs for real with a stand-in for the world:
    response = { status = 200, json = { data = { entities = [] } } }   # http: the answer (nothing is sent)
    [nodes.screenshot_ui]
    page = "entity-list.html"   # ui_screenshot: this page is captured (or screenshot = "shot.png" is used)
                                # schema_check and metrics_publish always run (metrics are not pushed)

    [nodes.approve_deploy]      # a gate: approve | reject (no decision: fail closed, the run ends ABORTED)
    decision = "approve"

    [expected]                  # or in a separate expected file ([expected] table or top-level keys)
    run = "NOK"
    rollback = "OK"
    [expected.outputs.check_disk]
    used_pct = "93"

An acceptance pack is a directory with `acceptance.yml` (OPS-001's layout: the runbook, `fixtures/`,
`expected/`, `screenshots/`)::

    runbook: entity-enrichment.yml                # optional when the pack holds one runbook
    scenarios:
      - name: "Happy path"
        fixture: fixtures/happy.json
        expected:                                 # inline, or a file in expected/ (expected: expected/happy.yml)
          status: success                         # success | failure | aborted
          steps: {validate: OK}
          kpis: {entities_processed: 19, duration_seconds: "<= 300"}
          errors: {count: "> 0", type: schema_validation}
          screenshots: {entity-list: screenshots/entity-list.png}

or `acceptance.toml`::

    runbook = "deploy_pipeline.playbook.toml"      # relative to the pack; a case may name its own
    [[case]]
    name = "healthy"
    fixture = "fixtures/healthy.toml"
    expected = "expected/healthy.toml"            # optional: else the fixture's [expected]
"""

from __future__ import annotations

import json
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook_nb.adapters.store import Store
from playbook_nb.app.inputs import load_runbook, resolve_variables
from playbook_nb.app.ports import AttemptResult, Executor, NodeCall
from playbook_nb.app.recorder import load_outputs
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import Node, NodeType, Runbook

NODE_FIELDS = frozenset(
    {"status", "stdout", "stderr", "exit_code", "error", "outputs", "return_value", "decision"}
) | frozenset({"response", "page", "screenshot"})
ANSWER_FIELDS = frozenset({"status", "stdout", "stderr", "exit_code", "error", "outputs", "return_value"})
STAND_IN_FILES = ("page", "screenshot")  # fixture fields naming files, relative to the fixture's folder
FIXTURE_KEYS = frozenset({"variables", "nodes", "expected", "gate_policy", "description", "assumptions"})
# OPS-001 expectations, checked by playbook_nb.app.rehearsal_checks (status/steps are the run and node states)
OPS_EXPECTED = frozenset({"kpis", "errors", "screenshots"})
OPS_STATUS = {"success": "OK", "failure": "NOK", "aborted": "ABORTED"}
STATES = ("OK", "NOK", "SKIPPED", "PENDING", "WAITING", "RUNNING")
RUN_STATES = ("OK", "NOK", "ABORTED", "RUNNING")


class FixtureError(PlaybookError):
    """A fixture, expected file or acceptance pack that cannot be used (exit code 2)."""


@dataclass
class FixtureResult(AttemptResult):
    """An attempt's outcome read from a fixture; `outputs`, when given, replace extraction from stdout."""

    outputs: dict[str, Any] | None = None


@dataclass
class Mismatch:
    what: str  # "run", a node id, or "node.outputs.name"
    expected: Any
    actual: Any


@dataclass
class RehearsalResult:
    name: str
    run_id: int
    status: str
    states: dict[str, str]
    outputs: dict[str, dict[str, Any]]
    mismatches: list[Mismatch] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)  # node ids the fake executor answered for, in order
    checks: list = field(default_factory=list)  # rehearsal_checks.Check, in report order

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(c.ok is not False for c in self.checks)


def load_data(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON file as a dict (FixtureError naming the file otherwise)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FixtureError(f"{path}: cannot read it ({err.strerror or err})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise FixtureError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {err}"
        ) from None
    if not isinstance(data, dict):
        raise FixtureError(f"{path}: expected a table/object at the top")
    return data


def check_fixture(runbook: Runbook, fixture: dict[str, Any], where: str = "fixture") -> None:
    unknown = sorted(set(fixture) - FIXTURE_KEYS)
    if unknown:
        raise FixtureError(
            f"{where}: unknown key '{unknown[0]}' (expected {', '.join(sorted(FIXTURE_KEYS))})"
        )
    nodes = fixture.get("nodes", {})
    if not isinstance(nodes, dict):
        raise FixtureError(f"{where}: [nodes] must be a table of node tables")
    for node_id, spec in nodes.items():
        if node_id not in runbook.nodes:
            raise FixtureError(f"{where}: node '{node_id}' is not in runbook '{runbook.meta.title}'")
        if not isinstance(spec, dict):
            raise FixtureError(f"{where}: nodes.{node_id} must be a table")
        bad = sorted(set(spec) - NODE_FIELDS)
        if bad:
            raise FixtureError(f"{where}: nodes.{node_id}: unknown field '{bad[0]}'")
        if "response" in spec and not isinstance(spec["response"], dict):
            raise FixtureError(f"{where}: nodes.{node_id}.response: expected a table (status, json or body)")
        statuses = spec.get("status", "ok")
        for status in statuses if isinstance(statuses, list) else [statuses]:
            if str(status).lower() not in ("ok", "nok"):
                raise FixtureError(f"{where}: nodes.{node_id}.status: expected ok or nok, got {status!r}")
        if "decision" in spec:
            if not runbook.nodes[node_id].is_gate:
                raise FixtureError(f"{where}: nodes.{node_id}.decision: '{node_id}' is not a Manual gate")
            if spec["decision"] not in ("approve", "reject"):
                raise FixtureError(f"{where}: nodes.{node_id}.decision: expected approve or reject")
    check_expected(runbook, fixture.get("expected", {}), where)


def check_expected(runbook: Runbook, expected: dict[str, Any], where: str) -> None:
    if not isinstance(expected, dict):
        raise FixtureError(f"{where}: [expected] must be a table")
    for key, value in expected.items():
        if key in OPS_EXPECTED:
            if not isinstance(value, dict):
                raise FixtureError(f"{where}: expected.{key}: expected a table")
            continue
        if key == "status":
            if str(value).lower() not in OPS_STATUS and str(value).upper() not in RUN_STATES:
                raise FixtureError(f"{where}: expected.status: expected success, failure or aborted")
        elif key == "steps":
            check_expected(runbook, dict(value), where)
        elif key == "run":
            if str(value).upper() not in RUN_STATES:
                raise FixtureError(f"{where}: expected.run: expected one of {', '.join(RUN_STATES)}")
        elif key == "outputs":
            for node_id in value:
                if node_id not in runbook.nodes:
                    raise FixtureError(f"{where}: expected.outputs.{node_id}: no such node")
        elif key not in runbook.nodes:
            raise FixtureError(f"{where}: expected.{key}: no such node in runbook '{runbook.meta.title}'")
        elif str(value).upper() not in STATES:
            raise FixtureError(f"{where}: expected.{key}: expected one of {', '.join(STATES)}")


class FixtureExecutor:
    """The session's executor during a rehearsal: answers from the fixture, runs nothing, except a Function
    step whose plugin rehearses: `real` runs it with the fixture entry standing in for the world."""

    def __init__(self, nodes: dict[str, dict[str, Any]], base_dir: Path | None, real: Executor):
        self.nodes = nodes
        self.base_dir = base_dir
        self.real = (
            real  # the faces' executor (adapters.executors.LocalExecutor): runs a plugin that rehearses
        )
        self.plugins = real.plugins
        self.calls: list[str] = []
        self._attempts: dict[str, int] = {}

    def rehearsal_spec(self, node: Node) -> dict[str, Any] | None:
        """The fixture entry to run `node`'s plugin with (it rehearses: the entry stands in for the world),
        or None to answer for the node from the fixture. An entry giving the answer itself always wins."""
        spec = dict(self.nodes.get(node.id, {}))
        if node.type is not NodeType.FUNCTION or ANSWER_FIELDS & set(spec):
            return None
        try:
            plugin = self.plugins.plugin(node.plugin or "")()
        except PlaybookError:
            return None
        for name in STAND_IN_FILES:
            if name in spec:
                path = Path(str(spec[name]))
                spec[name] = str(
                    path if path.is_absolute() or self.base_dir is None else self.base_dir / path
                )
        if not plugin.rehearses(spec):
            return None
        self.calls.append(node.id)
        return spec

    def run(self, call: NodeCall) -> AttemptResult:
        spec = self.rehearsal_spec(call.node)
        if spec is not None and call.step_context is not None:
            call.step_context.rehearsal = spec
            return self.real.run(call)
        return self.answer(call.node)

    def answer(self, node: Node) -> AttemptResult:
        self.calls.append(node.id)
        spec = self.nodes.get(node.id, {})
        n = self._attempts[node.id] = self._attempts.get(node.id, 0) + 1
        statuses = spec.get("status", "ok")
        if isinstance(statuses, list):
            status = statuses[min(n, len(statuses)) - 1] if statuses else "ok"
        else:
            status = statuses
        ok = str(status).lower() == "ok"
        exit_code = spec.get("exit_code", 0 if ok else 1) if node.type is NodeType.COMMAND else None
        now = time.time()
        return FixtureResult(
            ok=ok,
            exit_code=exit_code,
            stdout=str(spec.get("stdout", "")),
            stderr=str(spec.get("stderr", "")),
            return_value=spec.get("return_value"),
            error=None if ok else str(spec.get("error") or f"exit code {exit_code}"),
            started_at=now,
            ended_at=now,
            outputs=spec.get("outputs") if ok else None,
        )


def rehearse(
    runbook: Runbook,
    fixture: dict[str, Any],
    *,
    expected: dict[str, Any] | None = None,
    store: Store | None = None,
    name: str = "fixture",
    actor: str = "rehearsal",
    fixture_dir: Path | None = None,
    runbook_dir: Path | None = None,
    update_baselines: bool = False,
    base_dir: Path | None = None,
    executor: Executor,
) -> RehearsalResult:
    """Run `runbook` headless with node results from `fixture`; compare with `expected` (default: the fixture's
    [expected]). Without a store, the run is recorded in a throw-away index."""

    check_fixture(runbook, fixture, name)
    if expected is not None:
        check_expected(runbook, expected, name)
    expected = fixture.get("expected", {}) if expected is None else expected
    base_dir = base_dir or fixture_dir or Path.cwd()
    nodes = fixture.get("nodes", {})
    given = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fixture.get("variables", {}).items()}
    values = resolve_variables(runbook, cli_vars=given, interactive=False, environ={})
    approvals = {nid: spec["decision"] for nid, spec in nodes.items() if "decision" in spec}
    options = RunOptions(
        headless=True,
        trigger="terminal",
        actor=actor,
        max_retries=0,
        gate_policy=fixture.get("gate_policy", "fail-closed"),
        approvals=approvals,
        comment=f"rehearsal: {name}",
        extra_params={"rehearsal": name},
        runbook_dir=str(runbook_dir) if runbook_dir else None,
        update_baselines=update_baselines,
    )
    with tempfile.TemporaryDirectory(prefix="playbook-rehearsal-") as tmp:
        own = store is None
        store = store or Store.open(Path(tmp) / "runs.db")
        try:
            fake = FixtureExecutor(nodes, fixture_dir, executor)
            session = RunSession.start(runbook, values, store, options, executor=fake, namespace={})
            session.drive(lambda _session, _node, _kind: None)
            session.close()
            states = {row.node_id: row.state for row in store.node_states(session.run_id)}
            run = store.get_run(session.run_id)
            outputs = load_outputs(store, session.run_id)
            result = RehearsalResult(
                name, session.run_id, run.status, states, outputs, executed=list(fake.calls)
            )
            result.checks = _checks(
                runbook, fixture, expected, store, run, base_dir=base_dir, update_baselines=update_baselines
            )
        finally:
            if own:
                store.close()
    result.mismatches = compare(expected, result)
    return result


def _checks(runbook, fixture, expected, store, run, *, base_dir: Path, update_baselines: bool) -> list:
    """The OPS-001 report lines of one rehearsed run (read from the store while it is still open)."""
    from playbook_nb.app.rehearsal_checks import (
        RunFacts,
        assumption_checks,
        expected_checks,
        kpi_checks,
        screenshot_checks,
        step_checks,
    )
    from playbook_nb.app.step_files import load_artifacts

    facts = RunFacts(
        status=run.status,
        duration=run.duration or 0.0,
        states={row.node_id: row.state for row in store.node_states(run.id)},
        attempts=store.attempts(run.id),
        artifacts=load_artifacts(store, run.id),
        kinds={
            n.id: f"{n.plugin}.{n.function}" for n in runbook.nodes.values() if n.type is NodeType.FUNCTION
        },
    )

    def read(url: str) -> bytes:
        with store.open_artifact(url) as handle:
            return handle.read()

    checks = assumption_checks(runbook, fixture.get("assumptions") or {})
    states = {
        k: str(v).upper()
        for k, v in {**expected, **(expected.get("steps") or {})}.items()
        if k in runbook.nodes
    }
    run_expected = expected.get("run") or OPS_STATUS.get(str(expected.get("status", "")).lower())
    checks += step_checks(runbook, facts, states, str(run_expected).upper() if run_expected else None)
    checks += kpi_checks(runbook, facts) + screenshot_checks(facts, read)
    ops = {key: expected[key] for key in OPS_EXPECTED if key in expected}
    checks += expected_checks(ops, facts, base_dir=base_dir, read=read, update_baselines=update_baselines)
    return checks


def compare(expected: dict[str, Any], result: RehearsalResult) -> list[Mismatch]:
    mismatches: list[Mismatch] = []
    for key, value in expected.items():
        if key in OPS_EXPECTED:
            continue
        if key == "steps":
            mismatches += compare(dict(value), result)
            continue
        if key == "status":
            key, value = "run", OPS_STATUS.get(str(value).lower(), str(value).upper())
        if key == "run":
            if str(value).upper() != result.status:
                mismatches.append(Mismatch("run", str(value).upper(), result.status))
        elif key == "outputs":
            for node_id, names in value.items():
                actual = result.outputs.get(node_id, {})
                for out_name, want in names.items():
                    if out_name not in actual or actual[out_name] != want:
                        mismatches.append(
                            Mismatch(f"{node_id}.outputs.{out_name}", want, actual.get(out_name, "(none)"))
                        )
        elif str(value).upper() != result.states.get(key):
            mismatches.append(Mismatch(key, str(value).upper(), result.states.get(key)))
    return mismatches


# ---- acceptance packs -------------------------------------------------------------------------------------


@dataclass
class PackCase:
    name: str
    runbook: Path
    fixture: Path
    expected: Path | dict | None
    pack_dir: Path | None = None


def load_data_any(path: Path) -> dict[str, Any]:
    """TOML, JSON or YAML by the file's suffix."""
    if path.suffix not in (".yml", ".yaml"):
        return load_data(path)
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise FixtureError(f"{path}: cannot read it ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise FixtureError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise FixtureError(f"{path}: expected a mapping at the top")
    return data


def _pack_runbook(directory: Path, manifest: Path) -> Path:
    found = sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and p != manifest
        and (p.suffix in (".yml", ".yaml") or p.name.endswith(".playbook.toml"))
    )
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise FixtureError(f"{manifest}: say which runbook (runbook: FILE); the pack holds {names}")
    return found[0]


def load_yaml_pack(directory: Path, manifest: Path) -> list[PackCase]:
    data = load_data_any(manifest)
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, list) or not scenarios:
        raise FixtureError(f"{manifest}: no scenarios (a list of name, fixture, expected)")
    default = directory / data["runbook"] if data.get("runbook") else _pack_runbook(directory, manifest)
    found = []
    for index, scenario in enumerate(scenarios):
        where = f"{manifest}: scenarios[{index}]"
        if not isinstance(scenario, dict) or "fixture" not in scenario:
            raise FixtureError(f"{where}: needs at least fixture: fixtures/NAME.json")
        expected = scenario.get("expected")
        if isinstance(expected, str):
            expected = directory / expected
        elif expected is not None and not isinstance(expected, dict):
            raise FixtureError(f"{where}.expected: expected a mapping or a file name")
        runbook = directory / scenario["runbook"] if scenario.get("runbook") else default
        name = str(scenario.get("name") or Path(scenario["fixture"]).stem)
        found.append(PackCase(name, runbook, directory / scenario["fixture"], expected, directory))
    if len({c.name for c in found}) != len(found):
        raise FixtureError(f"{manifest}: two scenarios share a name")
    return found


def load_pack(directory: str | Path) -> list[PackCase]:
    directory = Path(directory)
    for name in ("acceptance.yml", "acceptance.yaml"):
        if (directory / name).is_file():
            return load_yaml_pack(directory, directory / name)
    manifest = directory / "acceptance.toml"
    if not manifest.is_file():
        raise FixtureError(
            f"{directory}: no acceptance.yml or acceptance.toml (an acceptance pack lists its cases there)"
        )
    data = load_data(manifest)
    cases = data.get("case", [])
    if not isinstance(cases, list) or not cases:
        raise FixtureError(f"{manifest}: no [[case]] entries")
    default_runbook = data.get("runbook")
    found: list[PackCase] = []
    for index, case in enumerate(cases, start=1):
        where = f"{manifest}: case {index}"
        if not isinstance(case, dict) or "fixture" not in case:
            raise FixtureError(f'{where}: needs at least fixture = "fixtures/NAME.toml"')
        runbook = case.get("runbook", default_runbook)
        if not runbook:
            raise FixtureError(f"{where}: no runbook (set runbook = ... at the top or in the case)")
        name = case.get("name") or Path(case["fixture"]).stem
        expected = directory / case["expected"] if case.get("expected") else None
        found.append(PackCase(name, directory / runbook, directory / case["fixture"], expected, directory))
    names = [c.name for c in found]
    if len(set(names)) != len(names):
        raise FixtureError(f"{manifest}: two cases share a name")
    return found


def run_case(
    case: PackCase, store: Store | None = None, *, executor: Executor, update_baselines: bool = False
) -> RehearsalResult:
    runbook = load_runbook(case.runbook)
    fixture = load_data_any(case.fixture)
    expected = None
    if isinstance(case.expected, dict):
        expected = case.expected
    elif case.expected is not None:
        data = load_data_any(case.expected)
        expected = data.get("expected", data)
    return rehearse(
        runbook,
        fixture,
        expected=expected,
        store=store,
        name=case.name,
        fixture_dir=case.fixture.parent,
        base_dir=case.pack_dir or case.fixture.parent,
        update_baselines=update_baselines,
        executor=executor,
    )
