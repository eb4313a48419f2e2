"""TOML or YAML text -> the runbook model (`playbook_nb.domain.model`): fields, types and dependency resolution.

Parsing resolves `depends_on` completely (lists, strings, "^", "*", implicit linear order, `:success` /
`:failure`, `rollback`), so nobody downstream sees the shorthand forms. Graph and template checks come after,
in `playbook_nb.domain.validation`.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from typing import Any

from playbook_nb.domain.credentials import credential_variables
from playbook_nb.domain.errors import PlaybookError, RunbookError, where
from playbook_nb.domain.model import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_MANUAL_PROMPT,
    Assumption,
    DepCondition,
    Dependency,
    Kpis,
    Node,
    NodeType,
    Runbook,
    RunbookMeta,
    Variable,
)
from playbook_nb.domain.outputs import check_output_spec
from playbook_nb.domain.templating import RUN_NAMES
from playbook_nb.domain.values import VARIABLE_TYPES
from playbook_nb.domain.variables import check_value
from playbook_nb.domain.yaml_format import load_yaml, looks_like_yaml, rewrite_error

RESERVED_TABLES = ("runbook", "variables")
COMMON_FIELDS = frozenset(
    {"type", "name", "description", "depends_on", "when", "critical", "skip", "retries", "retry_backoff"}
) | frozenset({"on_failure", "rollback"})
ON_FAILURE_CHOICES = ("abort", "continue")
KPI_FIELDS = frozenset({"max_duration", "target_success_rate", "max_error_rate"})
FLEET_FIELDS = frozenset({"targets", "transport", "batch", "max_fail", "ssh"})
TRANSPORTS = ("ssh",)
SSH_FIELDS = {
    "user": (str,),
    "port": (int,),
    "identity_file": (str, list),
    "known_hosts": (str,),
    "connect_timeout": (int, float),
    "agent": (bool,),
}
TYPE_FIELDS: dict[NodeType, frozenset[str]] = {
    NodeType.MANUAL: frozenset({"prompt_before", "prompt_after", "approvers", "four_eyes"}),
    NodeType.COMMAND: frozenset({"command_name", "timeout", "interactive", "outputs"}) | FLEET_FIELDS,
    NodeType.FUNCTION: frozenset(
        {"plugin", "function", "function_params", "plugin_config", "function_name", "outputs", "timeout"}
    ),
    NodeType.PYTHON: frozenset({"code", "outputs", "timeout"}),
    NodeType.ANSIBLE: frozenset(
        {"playbook", "inventory", "targets", "limit", "extra_vars", "batch", "timeout", "ssh"}
    ),
}
META_FIELDS = (
    frozenset({"title", "description", "version", "author", "created_at", "plugin_config"})
    | frozenset({"assumptions", "owner", "kpis"})
    | frozenset({"id", "legal_basis"})
)
VARIABLE_FIELDS = frozenset(
    {"default", "required", "choices", "type", "min", "max", "pattern", "description", "secret"}
)
# A variable may not shadow a name every template context provides (len: the global OPS-001 templates call).
RESERVED_VARIABLE_NAMES = RUN_NAMES | {"len"}
LEGACY_FUNCTION_PREFIX = "playbook.functions."
_TOML_POSITION = re.compile(r"\s*\((at line (\d+), column (\d+)|at end of document)\)\s*$")


def parse_structure(text: str, path: str | None = None) -> Runbook:
    """TOML or YAML (playbook_nb.domain.yaml_format), fields and dependency resolution only (no graph or template
    checks). Both syntaxes give the same tables, read by the same code below."""
    if looks_like_yaml(text, path):
        data, locations = load_yaml(text, path)
        try:
            runbook = _parse_tables(data, text, path)
        except RunbookError as err:
            raise rewrite_error(err, locations) from None
        runbook.format, runbook.locations = "yaml", locations
        return runbook
    return _parse_tables(load_toml(text, path), text, path)


def located(runbook: Runbook, err: RunbookError) -> RunbookError:
    """`err` naming the YAML path of what it is about, for a YAML runbook (as it is for TOML otherwise)."""
    if runbook.format != "yaml" or runbook.locations is None:
        return err
    return rewrite_error(err, runbook.locations)


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
    runbook = Runbook(
        meta=meta,
        variables=variables,
        nodes=nodes,
        source_text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        path=path,
    )
    runbook.credential_names = frozenset(credential_variables(runbook))
    return runbook


def load_toml(text: str, path: str | None) -> dict[str, Any]:
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


def _approvers(table: dict[str, Any], at: str | None) -> list[str] | None:
    """`approvers = ["alice", "group:sre"]`: who may decide a gate (absent: anyone who can reach it)."""
    if "approvers" not in table:
        return None
    value = table["approvers"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RunbookError('expected a list of names or "group:NAME", e.g. ["alice", "group:sre"]', at)
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or item.strip() == "group:":
            raise RunbookError(f'expected a name or "group:NAME", got {item!r}', at)
        names.append(item.strip())
    return names


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


def _parse_variables(table: Any, path: str | None) -> dict[str, Variable]:  # noqa: C901
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


def _parse_node(node_id: str, order: int, table: dict[str, Any], path: str | None) -> Node:  # noqa: C901
    def at(field_name: str | None = None) -> str | None:
        return where(path, node_id, field_name)

    if "type" not in table:
        raise RunbookError(
            "missing required field 'type' (Manual, Command, Function, Python or Ansible)", at()
        )
    raw_type = table["type"]
    try:
        node_type = NodeType(raw_type)
    except ValueError:
        raise RunbookError(
            f"unknown type {_quoted(raw_type)} (expected Manual, Command, Function, Python or Ansible)", at()
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
    if node.skip and node.critical is True:
        raise RunbookError(f"node '{node_id}' is critical and cannot be skipped", at("skip"))
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
        node.approvers = _approvers(table, at("approvers"))
        node.four_eyes = get("four_eyes", (bool,), "true or false", False)
    elif node_type is NodeType.COMMAND:
        node.command_name = _required_text(table, "command_name", at)
        node.timeout = get(
            "timeout", (int, str), "a number of seconds or a template string", DEFAULT_COMMAND_TIMEOUT
        )
        if isinstance(node.timeout, int) and node.timeout <= 0:
            raise RunbookError(f"expected a positive number of seconds, got {node.timeout}", at("timeout"))
        node.interactive = get("interactive", (bool,), "true or false", False)
        _parse_fleet_fields(node, table, at)
    elif node_type is NodeType.FUNCTION:
        _parse_function_fields(node, table, at)
        node.timeout = _timeout_field(table, at, DEFAULT_COMMAND_TIMEOUT)
    elif node_type is NodeType.ANSIBLE:
        _parse_ansible_fields(node, table, at)
    else:
        node.code = _required_text(table, "code", at)
        node.timeout = _timeout_field(table, at, 0)  # none unless given: a notebook cell may compute for long
    _parse_operations_fields(node, table, at)
    return node


def _parse_operations_fields(node: Node, table: dict[str, Any], at) -> None:
    """`outputs`, `on_failure` and `rollback` (issue 9); the outputs syntax is checked by playbook_nb.domain.outputs."""
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


def _parse_targets_field(value: Any, where: str | None) -> Any:
    if isinstance(value, list):
        if not value:
            raise RunbookError("expected at least one host", where)
        for item in value:
            _expect(item, (str,), "a list of hosts (strings)", where)
        return list(value)
    if isinstance(value, dict):
        if set(value) != {"file"}:
            raise RunbookError('expected {file = "hosts.txt"} (a file of hosts, one per line)', where)
        return {"file": _expect(value["file"], (str,), "a file path", where)}
    text = _expect(value, (str,), 'a list of hosts, a template naming a list, or {file = "..."}', where)
    if not text.strip():
        raise RunbookError("must not be empty", where)
    return text


def _parse_ssh_table(table: dict[str, Any], at) -> dict[str, Any]:
    ssh = _expect(table.get("ssh", {}), (dict,), "a table", at("ssh"))
    for key, value in ssh.items():
        if key not in SSH_FIELDS:
            raise RunbookError(
                f"unknown ssh option '{key}' (expected {', '.join(sorted(SSH_FIELDS))})", at("ssh")
            )
        _expect(
            value,
            SSH_FIELDS[key],
            f"{'a list of files or a file' if key == 'identity_file' else 'a ' + SSH_FIELDS[key][0].__name__}",
            at(f"ssh.{key}"),
        )
    if isinstance(ssh.get("port"), int) and not 0 < ssh["port"] < 65536:
        raise RunbookError(f"expected a port from 1 to 65535, got {ssh['port']}", at("ssh.port"))
    if "connect_timeout" in ssh and ssh["connect_timeout"] <= 0:
        raise RunbookError("expected a positive number of seconds", at("ssh.connect_timeout"))
    return dict(ssh)


def _positive_int(table: dict[str, Any], name: str, at) -> int | None:
    if name not in table:
        return None
    value = _expect(table[name], (int,), "a positive integer", at(name))
    if value < 1:
        raise RunbookError(f"expected a positive integer, got {value}", at(name))
    return value


def _parse_fleet_fields(node: Node, table: dict[str, Any], at) -> None:
    """`targets`, `transport`, `batch`, `max_fail`, `ssh` of a Command node (issue 21)."""
    if "targets" not in table:
        extra = sorted(set(table) & FLEET_FIELDS)
        if extra:
            raise RunbookError(f"'{extra[0]}' needs 'targets' (the hosts to run on)", at(extra[0]))
        return
    node.targets = _parse_targets_field(table["targets"], at("targets"))
    transport = _expect(table.get("transport", "ssh"), (str,), "a transport name", at("transport"))
    if transport not in TRANSPORTS:
        raise RunbookError(
            f"unknown transport {transport!r} (expected {', '.join(TRANSPORTS)})", at("transport")
        )
    node.transport = transport
    node.batch = _positive_int(table, "batch", at)
    node.max_fail = _positive_int(table, "max_fail", at)
    node.ssh = _parse_ssh_table(table, at)
    if node.interactive:
        raise RunbookError("a node with targets cannot be interactive", at("interactive"))


def _parse_ansible_fields(node: Node, table: dict[str, Any], at) -> None:
    node.playbook = _required_text(table, "playbook", at)
    if "inventory" in table:
        node.inventory = _required_text(table, "inventory", at)
    if "targets" in table:
        node.targets = _parse_targets_field(table["targets"], at("targets"))
    if node.inventory is None and node.targets is None:
        raise RunbookError("an Ansible node needs 'inventory' (a file) or 'targets' (hosts)", at())
    if "limit" in table:
        node.limit = _required_text(table, "limit", at)
    node.extra_vars = _expect(table.get("extra_vars", {}), (dict,), "a table", at("extra_vars"))
    node.batch = _positive_int(table, "batch", at)
    node.timeout = _expect(
        table.get("timeout", DEFAULT_COMMAND_TIMEOUT),
        (int, str),
        "a number of seconds or a template string",
        at("timeout"),
    )
    if isinstance(node.timeout, int) and node.timeout <= 0:
        raise RunbookError(f"expected a positive number of seconds, got {node.timeout}", at("timeout"))
    node.ssh = _parse_ssh_table(table, at)


def _quoted(value: Any) -> str:
    return repr(value)


def _required_text(table: dict[str, Any], name: str, at) -> str:
    if name not in table:
        raise RunbookError(f"missing required field '{name}'", at())
    value = _expect(table[name], (str,), "a string", at(name))
    if not value.strip():
        raise RunbookError("must not be empty", at(name))
    return value


def _timeout_field(table: dict, at, default: int) -> int | str:
    """`timeout` (seconds, or a template rendering to them) of a Function or Python node."""
    timeout = _expect(
        table.get("timeout", default), (int, str), "a number of seconds or a template string", at("timeout")
    )
    if isinstance(timeout, int) and "timeout" in table and timeout <= 0:
        raise RunbookError(f"expected a positive number of seconds, got {timeout}", at("timeout"))
    return timeout


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
            targets = previous[-1:]  # the previous node; on the first node, none (as in the seed)
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
