"""Typed runbook model: what a `*.playbook.toml` file holds, before any variable is substituted.

Parsing and validation (`load_runbook`, `parse_runbook`) live in this module too; the dependency graph
is built by `playbook_nb.domain.plan`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from playbook_nb.domain.errors import PlaybookError, RunbookError


class NodeType(StrEnum):
    MANUAL = "Manual"
    COMMAND = "Command"
    FUNCTION = "Function"
    PYTHON = "Python"


class DepCondition(StrEnum):
    PLAIN = "plain"  # upstream must end OK or SKIPPED
    SUCCESS = "success"  # `x:success`: upstream must end OK
    FAILURE = "failure"  # `x:failure`: upstream's last attempt failed


@dataclass(frozen=True)
class Dependency:
    node: str
    condition: DepCondition = DepCondition.PLAIN

    def __str__(self) -> str:
        return self.node if self.condition is DepCondition.PLAIN else f"{self.node}:{self.condition}"


@dataclass
class Variable:
    name: str
    default: Any = None
    required: bool = False
    choices: list[Any] | None = None
    type: str = "str"  # str, int, float, bool, list, dict
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    description: str = ""
    secret: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not None


DEFAULT_MANUAL_PROMPT = "Continue with the next step?"
DEFAULT_COMMAND_TIMEOUT = 300


@dataclass
class Node:
    id: str
    type: NodeType
    order: int  # position in declaration order (0-based)
    name: str = ""
    description: str = ""
    depends_on: list[Dependency] = field(default_factory=list)
    when: str | None = None  # a Jinja2 template evaluated to a boolean
    critical: bool | str = False  # a bool, or a template rendering to true/false
    skip: bool = False  # seed field: the node is skipped without running
    retries: int = 0  # automatic retries after a failed attempt
    retry_backoff: float = 0.0  # seconds before the first automatic retry; doubles each time
    # Manual
    prompt_before: str | None = None
    prompt_after: str = DEFAULT_MANUAL_PROMPT
    # Command
    command_name: str | None = None
    timeout: int | str = DEFAULT_COMMAND_TIMEOUT  # an int, or a template rendering to one
    interactive: bool = False
    # Function
    plugin: str | None = None
    function: str | None = None
    function_params: dict[str, Any] = field(default_factory=dict)
    plugin_config: dict[str, Any] = field(default_factory=dict)
    # Python
    code: str | None = None
    # issue 9: step outputs, failure policy, rollback (see playbook_nb.domain.outputs and docs/operations.md)
    # Command: "json" or {name = "regex:..." | "json:a.b" | "stdout"}; Python/Function: [names]
    outputs: Any = None
    on_failure: str | None = None  # None (the default rules), "abort" or "continue"
    rollback: str | None = None  # a node to run when this one fails (it gets a `this:failure` dependency)

    @property
    def output_names(self) -> list[str]:
        """Output names this node declares (a Command with outputs = "json" declares any name: ["*"])."""
        if self.outputs is None:
            return []
        if isinstance(self.outputs, str):
            return ["*"]
        return list(self.outputs)

    @property
    def label(self) -> str:
        return self.name or self.id

    @property
    def is_gate(self) -> bool:
        return self.type is NodeType.MANUAL

    @property
    def upstream(self) -> list[str]:
        return [d.node for d in self.depends_on]


@dataclass
class RunbookMeta:
    title: str
    description: str = ""
    version: str = ""
    author: str = ""
    created_at: str = ""
    plugin_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    # governance (issue 9): what must hold for the runbook to be right, who owns it, what it should achieve
    assumptions: list[Assumption] = field(default_factory=list)
    owner: str = ""
    kpis: Kpis | None = None
    # OPS-001: the runbook's own id and the legal basis it runs under (recorded with every run)
    id: str = ""
    legal_basis: str = ""


@dataclass(frozen=True)
class Assumption:
    """`"the volume can be grown online"` (a sentence), or OPS-001's `source_data_validated: true` (a name and
    the value a fixture must show for `test` to pass)."""

    name: str
    expected: Any = None
    checkable: bool = False  # True for the `name: expected value` form

    def __str__(self) -> str:
        if not self.checkable:
            return self.name
        shown = str(self.expected).lower() if isinstance(self.expected, bool) else self.expected
        return f"{self.name}: {shown}"


@dataclass(frozen=True)
class Kpis:
    """`[runbook] kpis = { max_duration = "15m", target_success_rate = 0.95 }`; both optional."""

    max_duration: float | None = None  # seconds
    target_success_rate: float | None = None  # 0..1
    max_error_rate: float | None = None  # 0..1: failed attempts among attempts (OPS-001)


@dataclass
class Runbook:
    meta: RunbookMeta
    variables: dict[str, Variable]
    nodes: dict[str, Node]  # in declaration order
    source_text: str
    sha256: str
    path: str | None = None  # where it was read from, for error messages
    format: str = "toml"  # "toml" or "yaml": the syntax of source_text
    locations: Any = field(default=None, repr=False, compare=False)  # YAML: where each path is (errors)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    @property
    def secret_names(self) -> set[str]:
        """Variables marked `secret = true`, and those that reach a credential parameter (auth_token, an
        Authorization header, ...: see playbook_nb.domain.credentials)."""
        from playbook_nb.domain.credentials import credential_variables

        return {name for name, var in self.variables.items() if var.secret} | credential_variables(self)


# --- parsing and validation ----------------------------------------------------------------------------
# Parsing turns TOML into the dataclasses above and resolves `depends_on` completely (lists, strings, "^",
# "*", implicit linear order, `:success` / `:failure`), so nobody downstream sees the shorthand forms.

RESERVED_TABLES = ("runbook", "variables")
COMMON_FIELDS = frozenset(
    {"type", "name", "description", "depends_on", "when", "critical", "skip", "retries", "retry_backoff"}
) | frozenset({"on_failure", "rollback"})
ON_FAILURE_CHOICES = ("abort", "continue")
KPI_FIELDS = frozenset({"max_duration", "target_success_rate", "max_error_rate"})
TYPE_FIELDS: dict[NodeType, frozenset[str]] = {
    NodeType.MANUAL: frozenset({"prompt_before", "prompt_after"}),
    NodeType.COMMAND: frozenset({"command_name", "timeout", "interactive", "outputs"}),
    NodeType.FUNCTION: frozenset(
        {"plugin", "function", "function_params", "plugin_config", "function_name", "outputs"}
    ),
    NodeType.PYTHON: frozenset({"code", "outputs"}),
}
META_FIELDS = (
    frozenset({"title", "description", "version", "author", "created_at", "plugin_config"})
    | frozenset({"assumptions", "owner", "kpis"})
    | frozenset({"id", "legal_basis"})
)
VARIABLE_FIELDS = frozenset(
    {"default", "required", "choices", "type", "min", "max", "pattern", "description", "secret"}
)
RESERVED_VARIABLE_NAMES = frozenset({"has_succeeded", "has_failed", "steps", "execution", "len"})
LEGACY_FUNCTION_PREFIX = "playbook.functions."
_TOML_POSITION = re.compile(r"\s*\((at line (\d+), column (\d+)|at end of document)\)\s*$")


@dataclass
class ValidationReport:
    """What `validate` shows: errors make the runbook invalid, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def where(path: str | None, node: str | None = None, field_name: str | None = None) -> str | None:
    """ "file: node 'a', field 'when'" with whatever parts are known."""
    parts = []
    if node is not None:
        parts.append(f"node '{node}'")
    if field_name is not None:
        parts.append(f"field '{field_name}'")
    inner = ", ".join(parts)
    if path and inner:
        return f"{path}: {inner}"
    return path or inner or None


def load_runbook(path: str | Path) -> Runbook:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookError("no such file", str(path)) from None
    except UnicodeDecodeError:
        raise RunbookError("not a UTF-8 text file", str(path)) from None
    except OSError as err:
        raise RunbookError(f"cannot read it ({err.strerror or err})", str(path)) from None
    return parse_runbook(text, str(path))


def parse_runbook(text: str, path: str | None = None) -> Runbook:
    """TOML or YAML text -> a fully resolved, structurally valid Runbook; RunbookError for the first problem."""
    runbook = parse_structure(text, path)
    try:
        check_runbook(runbook)
    except RunbookError as err:
        raise located(runbook, err) from None
    return runbook


def located(runbook: Runbook, err: RunbookError) -> RunbookError:
    """`err` naming the YAML path of what it is about, for a YAML runbook (as it is for TOML otherwise)."""
    if runbook.format != "yaml" or runbook.locations is None:
        return err
    from playbook_nb.domain.yaml_format import rewrite_error

    return rewrite_error(err, runbook.locations)


def parse_structure(text: str, path: str | None = None) -> Runbook:
    """TOML or YAML (playbook_nb.domain.yaml_format), fields and dependency resolution only (no graph or template
    checks). Both syntaxes give the same tables, read by the same code below."""
    from playbook_nb.domain.yaml_format import load_yaml, looks_like_yaml, rewrite_error

    if looks_like_yaml(text, path):
        data, locations = load_yaml(text, path)
        try:
            runbook = _parse_tables(data, text, path)
        except RunbookError as err:
            raise rewrite_error(err, locations) from None
        runbook.format, runbook.locations = "yaml", locations
        return runbook
    return _parse_tables(_load_toml(text, path), text, path)


def _parse_tables(data: dict[str, Any], text: str, path: str | None) -> Runbook:
    if "runbook" not in data:
        raise RunbookError(
            "missing the [runbook] table (title, description, version, author, created_at)", path
        )
    meta = _parse_meta(data["runbook"], path)
    variables = _parse_variables(data.get("variables", {}), path)
    node_tables = [(key, value) for key, value in data.items() if key not in RESERVED_TABLES]
    if not node_tables:
        raise RunbookError("the runbook has no nodes (add a table such as [first_step])", path)
    nodes: dict[str, Node] = {}
    for order, (node_id, table) in enumerate(node_tables):
        if not isinstance(table, dict):
            raise RunbookError(
                f"top-level key '{node_id}' is not a table (nodes are tables such as [{node_id}])", path
            )
        _check_node_id(node_id, path)
        nodes[node_id] = _parse_node(node_id, order, table, path)
    previous: list[str] = []
    for node_id, node in nodes.items():
        node.depends_on = _resolve_dependencies(node_id, node_tables[node.order][1], previous, path)
        previous.append(node_id)
    _add_rollback_dependencies(nodes, node_tables, path)
    return Runbook(
        meta=meta,
        variables=variables,
        nodes=nodes,
        source_text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        path=path,
    )


def _load_toml(text: str, path: str | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        match = _TOML_POSITION.search(message)
        reason = message[: match.start()] if match else message
        if match and match.group(2):
            position = f"line {match.group(2)}, column {match.group(3)}"
        elif match:
            position = "end of file"
        else:
            position = "unknown position"
        raise RunbookError(f"invalid TOML at {position}: {reason}", path) from None


def _type_label(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _expect(value: Any, kinds: tuple[type, ...], what: str, at: str | None) -> Any:
    if isinstance(value, bool) and bool not in kinds:
        raise RunbookError(f"expected {what}, got {_type_label(value)} ({value!r})", at)
    if not isinstance(value, kinds):
        raise RunbookError(f"expected {what}, got {_type_label(value)} ({value!r})", at)
    return value


def _parse_meta(table: Any, path: str | None) -> RunbookMeta:
    at = f"{path}: [runbook]" if path else "[runbook]"
    if not isinstance(table, dict):
        raise RunbookError("expected a table", at)
    unknown = sorted(set(table) - META_FIELDS)
    if unknown:
        raise RunbookError(f"unknown field '{unknown[0]}' (expected {', '.join(sorted(META_FIELDS))})", at)
    if "title" not in table:
        raise RunbookError("missing required field 'title'", at)
    values: dict[str, Any] = {}
    for name in ("title", "description", "version", "author"):
        if name in table:
            values[name] = _expect(table[name], (str,), "a string", f"{at}, field '{name}'")
    if "created_at" in table:
        created = table["created_at"]
        # An unquoted TOML datetime arrives as a datetime object; keep the text form.
        values["created_at"] = created.isoformat() if hasattr(created, "isoformat") else str(created)
    config = table.get("plugin_config", {})
    _expect(config, (dict,), "a table of plugin tables", f"{at}, field 'plugin_config'")
    for plugin_name, plugin_table in config.items():
        _expect(plugin_table, (dict,), "a table", f"{at}, field 'plugin_config.{plugin_name}'")
    values["plugin_config"] = config
    _parse_governance(table, values, at)
    return RunbookMeta(**values)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, at: str | None) -> float:
    """Seconds from a number of seconds or a text such as "90s", "15m", "2h", "1d"."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RunbookError(f'expected seconds or a duration such as "15m", got {value!r}', at)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise RunbookError(f'expected a duration such as "90s", "15m" or "2h", got {value!r}', at)
        value = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if value <= 0:
        raise RunbookError(f"expected a positive duration, got {value!r}", at)
    return float(value)


def _parse_governance(table: dict[str, Any], values: dict[str, Any], at: str) -> None:
    """`assumptions`, `owner` and `kpis` of [runbook] (issue 9)."""
    if "owner" in table:
        values["owner"] = _expect(table["owner"], (str,), "a string", f"{at}, field 'owner'")
    if "assumptions" in table:
        assumptions = _expect(
            table["assumptions"], (list,), "a list of strings", f"{at}, field 'assumptions'"
        )
        values["assumptions"] = [
            _parse_assumption(item, f"{at}, field 'assumptions'") for item in assumptions
        ]
    if "kpis" in table:
        kpis = _expect(table["kpis"], (dict,), "a table", f"{at}, field 'kpis'")
        unknown = sorted(set(kpis) - KPI_FIELDS)
        if unknown:
            raise RunbookError(
                f"unknown KPI '{unknown[0]}' (expected {', '.join(sorted(KPI_FIELDS))})",
                f"{at}, field 'kpis'",
            )
        max_duration = None
        if "max_duration" in kpis:
            max_duration = parse_duration(kpis["max_duration"], f"{at}, field 'kpis.max_duration'")
        rate = None
        if "target_success_rate" in kpis:
            where_rate = f"{at}, field 'kpis.target_success_rate'"
            rate = float(
                _expect(kpis["target_success_rate"], (int, float), "a number from 0 to 1", where_rate)
            )
            if not 0 <= rate <= 1:
                raise RunbookError(f"expected a number from 0 to 1, got {rate:g}", where_rate)
        error_rate = None
        if "max_error_rate" in kpis:
            where_error = f"{at}, field 'kpis.max_error_rate'"
            error_rate = float(
                _expect(kpis["max_error_rate"], (int, float), "a number from 0 to 1", where_error)
            )
            if not 0 <= error_rate <= 1:
                raise RunbookError(f"expected a number from 0 to 1, got {error_rate:g}", where_error)
        values["kpis"] = Kpis(max_duration=max_duration, target_success_rate=rate, max_error_rate=error_rate)
    for name in ("id", "legal_basis"):
        if name in table:
            values[name] = _expect(table[name], (str,), "a string", f"{at}, field '{name}'")


def _parse_assumption(item: Any, at: str) -> Assumption:
    if isinstance(item, str):
        return Assumption(item)
    if isinstance(item, dict) and len(item) == 1:
        ((name, expected),) = item.items()
        if isinstance(expected, str | bool | int | float):
            return Assumption(str(name), expected, checkable=True)
    raise RunbookError(
        "expected sentences or { name = expected value } pairs (a string, boolean or number)", at
    )


def _parse_variables(table: Any, path: str | None) -> dict[str, Variable]:
    from playbook_nb.domain.variables import VARIABLE_TYPES, check_value

    if not isinstance(table, dict):
        raise RunbookError("expected a table of variables", f"{path}: [variables]" if path else "[variables]")
    variables: dict[str, Variable] = {}
    for name, spec in table.items():
        at = f"{path}: variable {name}" if path else f"variable {name}"
        if not name.isidentifier() or name in RESERVED_VARIABLE_NAMES:
            raise RunbookError(
                "a variable name must be a Python identifier other than has_succeeded, has_failed, steps, "
                "execution and len",
                at,
            )
        if not isinstance(spec, dict):
            spec = {"default": spec}  # `NAME = "value"` is shorthand for a default
        unknown = sorted(set(spec) - VARIABLE_FIELDS)
        if unknown:
            raise RunbookError(
                f"unknown field '{unknown[0]}' (expected {', '.join(sorted(VARIABLE_FIELDS))})", at
            )
        default = spec.get("default")
        type_name = spec.get("type", _infer_type(default))
        if type_name not in VARIABLE_TYPES:
            raise RunbookError(
                f"unknown type {type_name!r} (expected one of {', '.join(VARIABLE_TYPES)})", at
            )
        choices = spec.get("choices")
        if choices is not None:
            _expect(choices, (list,), "a list of choices", f"{at}, field 'choices'")
        for bound in ("min", "max"):
            if bound in spec:
                _expect(spec[bound], (int, float), "a number", f"{at}, field '{bound}'")
        pattern = spec.get("pattern")
        if pattern is not None:
            _expect(pattern, (str,), "a regular expression", f"{at}, field 'pattern'")
            try:
                re.compile(pattern)
            except re.error as err:
                raise RunbookError(f"invalid pattern {pattern!r}: {err}", at) from None
        var = Variable(
            name=name,
            default=default,
            required=_expect(
                spec.get("required", False), (bool,), "true or false", f"{at}, field 'required'"
            ),
            choices=choices,
            type=type_name,
            min=spec.get("min"),
            max=spec.get("max"),
            pattern=pattern,
            description=_expect(
                spec.get("description", ""), (str,), "a string", f"{at}, field 'description'"
            ),
            secret=_expect(spec.get("secret", False), (bool,), "true or false", f"{at}, field 'secret'"),
        )
        if choices is not None:
            for choice in choices:
                try:
                    check_value(Variable(name=name, type=type_name), choice)
                except PlaybookError:
                    raise RunbookError(f"choice {choice!r} is not a {type_name}", at) from None
        if var.has_default:
            try:
                var.default = check_value(var, default)
            except PlaybookError as err:
                raise RunbookError(f"invalid default: {str(err).split(': ', 1)[-1]}", at) from None
        variables[name] = var
    return variables


def _infer_type(default: Any) -> str:
    for kind, name in ((bool, "bool"), (int, "int"), (float, "float"), (list, "list"), (dict, "dict")):
        if isinstance(default, kind):
            return name
    return "str"


def _check_node_id(node_id: str, path: str | None) -> None:
    if (
        not node_id
        or node_id in ("^", "*")
        or any(c == ":" or not c.isprintable() or c.isspace() for c in node_id)
    ):
        raise RunbookError(
            f"node id {node_id!r} must not be empty, '^' or '*', or contain ':' or spaces", path
        )


def _parse_node(node_id: str, order: int, table: dict[str, Any], path: str | None) -> Node:
    def at(field_name: str | None = None) -> str | None:
        return where(path, node_id, field_name)

    if "type" not in table:
        raise RunbookError("missing required field 'type' (Manual, Command, Function or Python)", at())
    raw_type = table["type"]
    try:
        node_type = NodeType(raw_type)
    except ValueError:
        raise RunbookError(
            f"unknown type {_quoted(raw_type)} (expected Manual, Command, Function or Python)", at()
        ) from None
    allowed = COMMON_FIELDS | TYPE_FIELDS[node_type]
    for name in table:
        if name not in allowed:
            other = next((t for t, fields in TYPE_FIELDS.items() if name in fields), None)
            hint = f" (it belongs to {other} nodes)" if other else ""
            raise RunbookError(f"unknown field '{name}' for a {node_type} node{hint}", at())

    def get(name: str, kinds: tuple[type, ...], what: str, default: Any) -> Any:
        if name not in table:
            return default
        return _expect(table[name], kinds, what, at(name))

    node = Node(id=node_id, type=node_type, order=order)
    node.name = get("name", (str,), "a string", "")
    node.description = get("description", (str,), "a string", "")
    node.when = get("when", (str,), "a template string such as \"{{ ENV == 'prod' }}\"", None)
    node.critical = get("critical", (bool, str), "true, false or a template string", False)
    node.skip = get("skip", (bool,), "true or false", False)
    node.retries = get("retries", (int,), "a non-negative integer", 0)
    if node.retries < 0:
        raise RunbookError(f"expected a non-negative integer, got {node.retries}", at("retries"))
    node.retry_backoff = float(get("retry_backoff", (int, float), "a number of seconds", 0.0))
    if node.retry_backoff < 0:
        raise RunbookError(
            f"expected a non-negative number of seconds, got {node.retry_backoff}", at("retry_backoff")
        )
    if "depends_on" in table:
        _expect(table["depends_on"], (str, list), "a node id or a list of node ids", at("depends_on"))

    if node_type is NodeType.MANUAL:
        node.prompt_before = get("prompt_before", (str,), "a string", None)
        node.prompt_after = get("prompt_after", (str,), "a string", DEFAULT_MANUAL_PROMPT)
    elif node_type is NodeType.COMMAND:
        node.command_name = _required_text(table, "command_name", at)
        node.timeout = get(
            "timeout", (int, str), "a number of seconds or a template string", DEFAULT_COMMAND_TIMEOUT
        )
        if isinstance(node.timeout, int) and node.timeout <= 0:
            raise RunbookError(f"expected a positive number of seconds, got {node.timeout}", at("timeout"))
        node.interactive = get("interactive", (bool,), "true or false", False)
    elif node_type is NodeType.FUNCTION:
        _parse_function_fields(node, table, at)
    else:
        node.code = _required_text(table, "code", at)
    _parse_operations_fields(node, table, at)
    return node


def _parse_operations_fields(node: Node, table: dict[str, Any], at) -> None:
    """`outputs`, `on_failure` and `rollback` (issue 9); the outputs syntax is checked by playbook_nb.domain.outputs."""
    from playbook_nb.domain.outputs import check_output_spec

    if "outputs" in table:
        node.outputs = check_output_spec(node, table["outputs"], at("outputs"))
    if "on_failure" in table:
        value = _expect(table["on_failure"], (str,), "abort or continue", at("on_failure"))
        if value not in ON_FAILURE_CHOICES:
            raise RunbookError(f"expected abort or continue, got {value!r}", at("on_failure"))
        if value == "continue" and node.critical is True:
            raise RunbookError(
                'on_failure = "continue" contradicts critical = true (a critical failure fails the run)',
                at("on_failure"),
            )
        node.on_failure = value
    if "rollback" in table:
        node.rollback = _expect(table["rollback"], (str,), "a node id", at("rollback"))
        if node.rollback == node.id:
            raise RunbookError("a node cannot be its own rollback", at("rollback"))


def _quoted(value: Any) -> str:
    return repr(value)


def _required_text(table: dict[str, Any], name: str, at) -> str:
    if name not in table:
        raise RunbookError(f"missing required field '{name}'", at())
    value = _expect(table[name], (str,), "a string", at(name))
    if not value.strip():
        raise RunbookError("must not be empty", at(name))
    return value


def _parse_function_fields(node: Node, table: dict[str, Any], at) -> None:
    if "function_name" in table:
        if "plugin" in table or "function" in table:
            raise RunbookError("use either function_name or plugin + function, not both", at("function_name"))
        dotted = _required_text(table, "function_name", at)
        # The seed's older form: `function_name = "playbook.functions.notify"` is the python plugin's notify.
        if not dotted.startswith(LEGACY_FUNCTION_PREFIX) or "." in dotted.removeprefix(
            LEGACY_FUNCTION_PREFIX
        ):
            raise RunbookError(
                f"expected 'playbook.functions.<name>', got '{dotted}' (or use plugin + function)",
                at("function_name"),
            )
        node.plugin, node.function = "python", dotted.removeprefix(LEGACY_FUNCTION_PREFIX)
    else:
        node.plugin = _required_text(table, "plugin", at)
        node.function = _required_text(table, "function", at)
    node.function_params = _expect(
        table.get("function_params", {}), (dict,), "a table", at("function_params")
    )
    node.plugin_config = _expect(table.get("plugin_config", {}), (dict,), "a table", at("plugin_config"))


def _resolve_dependencies(
    node_id: str, table: dict[str, Any], previous: list[str], path: str | None
) -> list[Dependency]:
    at = where(path, node_id, "depends_on")
    if "depends_on" not in table:
        return [Dependency(previous[-1])] if previous else []
    raw = table["depends_on"]
    items = [raw] if isinstance(raw, str) else raw
    resolved: dict[str, Dependency] = {}
    for item in items:
        _expect(item, (str,), "node ids (strings)", at)
        target, sep, suffix = item.strip().partition(":")
        condition = DepCondition.PLAIN
        if sep:
            if suffix not in (DepCondition.SUCCESS, DepCondition.FAILURE):
                raise RunbookError(
                    f"Invalid condition '{suffix}' in '{item}' (expected success or failure)", at
                )
            condition = DepCondition(suffix)
        if target == "^":
            if not previous:
                raise RunbookError(f"'{item}' means the previous node, but '{node_id}' is the first node", at)
            targets = [previous[-1]]
        elif target == "*":
            targets = list(previous)
        elif not target:
            raise RunbookError(f"empty node id in '{item}'", at)
        else:
            targets = [target]
        for name in targets:
            dep = Dependency(name, condition)
            known = resolved.get(name)
            if known is not None and known != dep:
                raise RunbookError(
                    f"depends on '{name}' twice with different conditions ('{known}' and '{dep}')", at
                )
            resolved[name] = dep
    return list(resolved.values())


def _add_rollback_dependencies(nodes: dict[str, Node], node_tables: list, path: str | None) -> None:
    """`rollback = "undo"` on node x means: undo depends on `x:failure`. A rollback node without its own
    depends_on loses its implicit dependency on the previous node (it runs only after a failure)."""
    replaced: set[str] = set()
    for node in nodes.values():
        if node.rollback is None:
            continue
        at = where(path, node.id, "rollback")
        target = nodes.get(node.rollback)
        if target is None:
            close = difflib.get_close_matches(node.rollback, list(nodes), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RunbookError(f"rollback node '{node.rollback}' does not exist{hint}", at)
        if "depends_on" not in node_tables[target.order][1] and target.id not in replaced:
            target.depends_on = []
            replaced.add(target.id)
        dep = Dependency(node.id, DepCondition.FAILURE)
        known = next((d for d in target.depends_on if d.node == node.id), None)
        if known is None:
            target.depends_on.append(dep)
        elif known != dep:
            raise RunbookError(
                f"'{target.id}' is the rollback of '{node.id}' but depends on '{known}' "
                f"(a rollback runs only after '{node.id}:failure')",
                at,
            )


def check_runbook(runbook: Runbook) -> set[str]:
    """Graph and template checks; raises RunbookError for the first problem. Returns the variable names
    the templates use."""
    from playbook_nb.domain.outputs import check_output_references
    from playbook_nb.domain.plan import build_plan

    graph = build_plan(runbook)
    used = check_templates(runbook)
    check_output_references(runbook, graph)
    return used


def template_fields(runbook: Runbook):
    """(node id or None, field name, template text) for every templated string in the runbook."""
    for name in ("title", "description"):
        yield None, name, getattr(runbook.meta, name)
    for node in runbook.nodes.values():
        for name in ("name", "description", "when", "prompt_before", "prompt_after", "command_name"):
            value = getattr(node, name)
            if isinstance(value, str):
                yield node.id, name, value
        if isinstance(node.critical, str):
            yield node.id, "critical", node.critical
        if isinstance(node.timeout, str):
            yield node.id, "timeout", node.timeout
        yield from _nested_strings(node.id, "function_params", node.function_params)


def _nested_strings(node_id: str, prefix: str, value: Any):
    if isinstance(value, str):
        yield node_id, prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nested_strings(node_id, f"{prefix}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nested_strings(node_id, f"{prefix}[{index}]", item)


def check_templates(runbook: Runbook) -> set[str]:
    """Statically check every template; returns the variable names they use."""
    from playbook_nb.domain.templating import check_template

    declared = set(runbook.variables)
    node_ids = set(runbook.nodes)
    used: set[str] = set()
    for node_id, field_name, text in template_fields(runbook):
        if node_id is None:
            at = (
                f"{runbook.path}: [runbook], field '{field_name}'"
                if runbook.path
                else f"[runbook], field '{field_name}'"
            )
        else:
            at = where(runbook.path, node_id, field_name)
        used |= check_template(text, at, declared, node_ids)
    return used


def validate_runbook(runbook: Runbook, values: dict[str, Any] | None = None) -> ValidationReport:
    """Errors and warnings for `validate`. `values` (resolved variables), when given, are checked against
    every templated field by rendering it."""
    from playbook_nb.domain.plan import collect_warnings

    report = ValidationReport()
    try:
        used = check_runbook(runbook)
    except RunbookError as err:
        report.errors.append(str(located(runbook, err)))
        return report
    if values is not None:
        report.errors.extend(_render_errors(runbook, values))
    report.warnings.extend(collect_warnings(runbook, used))
    return report


def _render_errors(runbook: Runbook, values: dict[str, Any]) -> list[str]:
    """Render every templated field with real values, as a run would, and collect what fails."""
    from playbook_nb.domain.errors import TemplateError
    from playbook_nb.domain.outputs import step_references as uses_step_outputs
    from playbook_nb.domain.redact import Redactor
    from playbook_nb.domain.templating import make_context, render, render_bool, render_command, render_int

    context = make_context(values, has_succeeded=lambda _id: False, has_failed=lambda _id: False)
    redactor = Redactor(str(values[name]) for name in runbook.secret_names if name in values)
    errors: list[str] = []
    for node_id, field_name, text in template_fields(runbook):
        at = where(runbook.path, node_id, field_name) if node_id else f"[runbook], field '{field_name}'"
        if "steps" in text and uses_step_outputs(text):
            continue  # step outputs exist only during a run (their references were checked statically)
        try:
            if field_name in ("when", "critical"):
                render_bool(text, context, at)
            elif field_name == "timeout":
                render_int(text, context, at)
            elif field_name == "command_name":
                render_command(text, context, at)
            else:
                render(text, context, at)
        except TemplateError as err:
            errors.append(redactor.redact(str(err)))
    return errors
