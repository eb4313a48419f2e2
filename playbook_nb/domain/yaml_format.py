"""Runbooks in OPS-001's YAML shape, read into the same tables the TOML parser reads (one model, two syntaxes).

    id: rb-001-entity-enrichment            ->  [runbook] id, title (= name, else id), version, owner, ...
    name: Entity Enrichment Pipeline
    legal_basis: "Per IC Policy 12.3 ..."
    assumptions: [{source_data_validated: true}, "text"]
    kpis: {max_duration_seconds: 300, min_success_rate: 0.95, max_error_rate: 0.05}
    variables: {API_TOKEN: {secret: true}}  ->  [variables] (optional: ${NAME} declares NAME if missing)
    steps:
      - id: ingest                          ->  [ingest]
        type: data_fetch                    ->  type = "Function", plugin = "http", function = "fetch"
        inputs: {source_url: "${SOURCE_API_URL}"}   ->  function_params = { source_url = "{{ SOURCE_API_URL }}" }
        outputs: {entities: "$.data.entities"}
        on_failure: abort | log_and_continue

Step types: OPS-001's (`data_fetch`, `api_call`, `schema_check`, `metrics_publish`, `ui_screenshot`, `wait`),
`PLUGIN.FUNCTION` for any installed plugin, and the TOML node types (`Command` with `command`, `Manual` with
`prompt`, `Python` with `code`, `Function` with `plugin` and `function`). `${expr}` is `{{ expr }}` (`$${`
is a literal `${`); Jinja syntax is accepted as it is. A step without `depends_on` depends on the step before
it, as in TOML.

Errors name the YAML path and line: `rb.yml: steps[1].inputs.schema (step 'validate', line 31): ...`.
`tables_to_yaml` writes the other way, for `playbook-nb convert`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.templating import ENV, RUN_NAMES, is_template, variables_used

# OPS-001 step type -> (plugin, function)
STEP_TYPES: dict[str, tuple[str, str]] = {
    "data_fetch": ("http", "fetch"),
    "api_call": ("http", "call"),
    "schema_check": ("schema_check", "validate"),
    "metrics_publish": ("metrics_publish", "push"),
    "ui_screenshot": ("ui_screenshot", "capture"),
    "wait": ("python", "sleep"),
}
NODE_TYPES = ("Command", "Manual", "Python", "Function")
TOP_FIELDS = (
    "id",
    "name",
    "version",
    "owner",
    "legal_basis",
    "description",
    "author",
    "created_at",
    "assumptions",
    "kpis",
    "variables",
    "plugin_config",
    "steps",
)
KPI_NAMES = {"max_duration_seconds": "max_duration", "min_success_rate": "target_success_rate"}
KPI_NAMES_BACK = {v: k for k, v in KPI_NAMES.items()}
ON_FAILURE = {"abort": "abort", "log_and_continue": "continue", "continue": "continue"}
COMMON_STEP_FIELDS = (
    "id",
    "type",
    "name",
    "description",
    "depends_on",
    "when",
    "critical",
    "skip",
    "retries",
    "retry_backoff",
    "rollback",
    "on_failure",
    "outputs",
)
TYPE_STEP_FIELDS = {
    "Command": ("command", "timeout", "interactive"),
    "Manual": ("prompt", "prompt_before"),
    "Python": ("code",),
    "Function": ("plugin", "function", "inputs", "plugin_config", "timeout"),
}
# YAML step field -> TOML node field (where they differ)
FIELD_TO_TOML = {"command": "command_name", "prompt": "prompt_after", "inputs": "function_params"}
FIELD_TO_YAML = {v: k for k, v in FIELD_TO_TOML.items()}
_DOLLAR = re.compile(r"\$(\$?)\{((?:[^{}'\"]|'[^']*'|\"[^\"]*\")*)\}")


def looks_like_yaml(text: str, path: str | None = None) -> bool:
    """YAML by the file name, else by the first meaningful line (`key:` or `---`; TOML has `key =`, `[t]`)."""
    if path and path.lower().endswith((".yml", ".yaml")):
        return True
    if path and path.lower().endswith(".toml"):
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped == "---" or bool(re.match(r"^[A-Za-z_][\w-]*\s*:(\s|$)", stripped))
    return False


def dollar_to_jinja(text: str) -> str:
    """`${expr}` -> `{{ expr }}`; `$${x}` stays a literal `${x}`."""

    def swap(match: re.Match) -> str:
        escaped, expr = match.groups()
        if escaped:
            return "${" + expr + "}"
        return "{{ " + expr.strip() + " }}"

    return _DOLLAR.sub(swap, text) if "${" in text else text


def _templates(value: Any) -> Any:
    if isinstance(value, str):
        return dollar_to_jinja(value)
    if isinstance(value, dict):
        return {k: _templates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_templates(v) for v in value]
    return value


# ---- positions --------------------------------------------------------------------------------------------


@dataclass
class YamlLocations:
    """Line numbers of the YAML paths, and which step is which, for error messages."""

    path: str | None
    lines: dict[tuple, int] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)  # step id -> index in steps

    def at(self, keys: tuple, step: str | None = None) -> str:
        text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
        line = None
        probe = keys
        while probe and line is None:
            line = self.lines.get(probe)
            probe = probe[:-1]
        extra = [f"step '{step}'"] if step else []
        if line is not None:
            extra.append(f"line {line}")
        where = text or "top level"
        if extra:
            where += f" ({', '.join(extra)})"
        return f"{self.path}: {where}" if self.path else where

    def step_field(self, node_id: str, toml_field: str | None) -> str:
        """The YAML path of a TOML (node, field) pair: function_params.x -> inputs.x, command_name -> command."""
        index = self.steps.get(node_id)
        if index is None:
            return self.at((), node_id)
        keys: tuple = ("steps", index)
        if toml_field:
            head, _, rest = toml_field.partition(".")
            keys += (FIELD_TO_YAML.get(head, head), *([p for p in re.split(r"\.|\[|\]", rest) if p]))
        return self.at(tuple(int(k) if isinstance(k, str) and k.isdigit() else k for k in keys), node_id)


def _positions(node, keys: tuple, lines: dict[tuple, int]) -> None:
    import yaml  # here and below at use: PyYAML costs 9 ms at every start of a command that reads TOML

    lines.setdefault(keys, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*keys, key)] = key_node.start_mark.line + 1
            _positions(value_node, (*keys, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _positions(item, (*keys, index), lines)


# ---- YAML -> tables ---------------------------------------------------------------------------------------


def load_yaml(text: str, path: str | None) -> tuple[dict[str, Any], YamlLocations]:
    """The YAML text as the tables the TOML parser reads, and where each YAML path is."""
    import yaml

    locations = YamlLocations(path)
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
        composed = yaml.compose(text) if len(documents) == 1 else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        position = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RunbookError(f"invalid YAML at {position}: {problem}", path) from None
    if len(documents) != 1:
        raise RunbookError(f"expected one YAML document, found {len(documents)}", path)
    if composed is not None:
        _positions(composed, (), locations.lines)
    doc = documents[0]
    if not isinstance(doc, dict):
        raise RunbookError("expected a mapping at the top (id, name, steps, ...)", path)
    return _tables(doc, locations), locations


def _expect(value: Any, kinds: tuple[type, ...], what: str, where: str) -> Any:
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise RunbookError(f"expected {what}, got {value!r}", where)
    return value


def _tables(doc: dict[str, Any], loc: YamlLocations) -> dict[str, Any]:
    for key in doc:
        if key not in TOP_FIELDS:
            raise RunbookError(f"unknown field '{key}' (expected {', '.join(TOP_FIELDS)})", loc.at((key,)))
    if "id" not in doc and "name" not in doc:
        raise RunbookError("missing 'id' and 'name' (a runbook needs at least one of them)", loc.at(()))
    meta: dict[str, Any] = {}
    for key in ("id", "name", "version", "owner", "legal_basis", "description", "author", "created_at"):
        if key in doc:
            value = doc[key]
            if key in ("version", "created_at") and not isinstance(value, str | bool) and value is not None:
                value = value.isoformat() if hasattr(value, "isoformat") else str(value)  # 1.0 or a date
            _expect(value, (str,), "a string", loc.at((key,)))
            meta["title" if key == "name" else key] = _templates(value) if key == "name" else value
    meta.setdefault("title", doc.get("id"))
    if "assumptions" in doc:
        meta["assumptions"] = _assumptions(doc["assumptions"], loc)
    if "kpis" in doc:
        kpis = _expect(doc["kpis"], (dict,), "a mapping of KPIs", loc.at(("kpis",)))
        meta["kpis"] = {KPI_NAMES.get(k, k): v for k, v in kpis.items()}
    if "plugin_config" in doc:
        meta["plugin_config"] = _expect(
            doc["plugin_config"], (dict,), "a mapping", loc.at(("plugin_config",))
        )
    tables: dict[str, Any] = {}
    if "variables" in doc:
        tables["variables"] = _expect(doc["variables"], (dict,), "a mapping", loc.at(("variables",)))
    tables["runbook"] = meta
    steps = doc.get("steps")
    if steps is None:
        raise RunbookError("missing 'steps' (a list of steps with id and type)", loc.at(()))
    _expect(steps, (list,), "a list of steps", loc.at(("steps",)))
    if not steps:
        raise RunbookError("the runbook has no steps", loc.at(("steps",)))
    for index, step in enumerate(steps):
        node_id, table = _step(index, step, loc)
        if node_id in tables or node_id in ("runbook", "variables"):
            first = loc.steps.get(node_id)
            hint = f" (steps[{first}] has it already)" if first is not None else " (a reserved name)"
            raise RunbookError(f"duplicate step id '{node_id}'{hint}", loc.at(("steps", index, "id")))
        loc.steps[node_id] = index
        tables[node_id] = table
    _imply_variables(tables)
    return tables


def _assumptions(raw: Any, loc: YamlLocations) -> list[Any]:
    _expect(raw, (list,), "a list of 'name: expected value' items", loc.at(("assumptions",)))
    result: list[Any] = []
    for index, item in enumerate(raw):
        where = loc.at(("assumptions", index))
        if isinstance(item, str):
            result.append(item)
        elif isinstance(item, dict) and len(item) == 1:
            result.append(dict(item))
        else:
            raise RunbookError("expected 'name: expected value' (one pair) or a sentence", where)
    return result


def _step(index: int, step: Any, loc: YamlLocations) -> tuple[str, dict[str, Any]]:  # noqa: C901
    base = ("steps", index)
    _expect(step, (dict,), "a step (a mapping with id and type)", loc.at(base))
    if "id" not in step:
        raise RunbookError("missing 'id'", loc.at(base))
    node_id = _expect(step["id"], (str,), "a step id (a string)", loc.at((*base, "id")))
    if "type" not in step:
        raise RunbookError("missing 'type'", loc.at(base, node_id))
    raw_type = _expect(step["type"], (str,), "a step type", loc.at((*base, "type"), node_id))
    table: dict[str, Any] = {}
    if raw_type in STEP_TYPES or "." in raw_type or raw_type.lower() == "function":
        node_type = "Function"
        if raw_type in STEP_TYPES:
            table["plugin"], table["function"] = STEP_TYPES[raw_type]
        elif "." in raw_type:
            table["plugin"], _, table["function"] = raw_type.partition(".")
    else:
        found = next((t for t in NODE_TYPES if t.lower() == raw_type.lower()), None)
        if found is None:
            known = ", ".join([*STEP_TYPES, "Command", "Manual", "Python", "Function", "PLUGIN.FUNCTION"])
            raise RunbookError(
                f"unknown step type '{raw_type}' (known: {known})", loc.at((*base, "type"), node_id)
            )
        node_type = found
    table["type"] = node_type
    allowed = COMMON_STEP_FIELDS + TYPE_STEP_FIELDS[node_type]
    for key, value in step.items():
        if key in ("id", "type"):
            continue
        where = loc.at((*base, key), node_id)
        if key not in allowed:
            other = next((t for t, fields in TYPE_STEP_FIELDS.items() if key in fields), None)
            hint = f" (it belongs to {other} steps)" if other else ""
            raise RunbookError(f"unknown field '{key}' for a {raw_type} step{hint}", where)
        if key in ("plugin", "function") and raw_type.lower() != "function":
            raise RunbookError(f"'{key}' is given by the step type '{raw_type}'", where)
        if key == "on_failure":
            text = _expect(value, (str,), "abort or log_and_continue", where)
            if text not in ON_FAILURE:
                raise RunbookError(f"expected abort or log_and_continue, got {text!r}", where)
            value = ON_FAILURE[text]
        elif key == "inputs":
            value = _expect(value, (dict,), "a mapping of inputs", where)
        elif key == "outputs" and node_type == "Function" and isinstance(value, dict):
            value = dict(value)  # JSONPath strings are not templates
        elif key in (
            "depends_on",
            "outputs",
            "plugin",
            "function",
            "rollback",
            "timeout",
            "code",
            "plugin_config",
        ):
            pass
        else:
            value = _templates(value)
        if key == "inputs":
            value = _templates(value)  # (a step's plugin_config is not templated: its ${VAR} are environment)
        table[FIELD_TO_TOML.get(key, key)] = value
    if node_type == "Function" and "function_params" not in table:
        table["function_params"] = {}
    if isinstance(table.get("timeout"), str):
        table["timeout"] = dollar_to_jinja(table["timeout"])
    return node_id, table


def _imply_variables(tables: dict[str, Any]) -> None:
    """`${NAME}` of an undeclared NAME declares it: a required string variable (the TOML form must say so)."""
    declared = tables.setdefault("variables", {})
    used: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and is_template(value):
            with contextlib.suppress(Exception):  # a broken template is reported by the parser, in place
                used.update(variables_used(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for key, table in tables.items():
        if key != "variables":
            walk(table)
    for name in sorted(used - set(declared) - RUN_NAMES - set(ENV.globals)):
        if name.isidentifier():
            declared[name] = {"required": True, "description": f"implied by ${{{name}}} in the runbook"}
    if not declared:
        del tables["variables"]


def rewrite_error(err: RunbookError, locations: YamlLocations) -> RunbookError:
    """A parser error about (node, field) or [runbook] restated with the YAML path it comes from."""
    where = err.where or ""
    prefix = f"{locations.path}: " if locations.path else ""
    rest = "" if where == locations.path else where[len(prefix) :] if where.startswith(prefix) else where
    node = re.fullmatch(r"node '(.+?)'(?:, field '(.+?)')?", rest)
    if node and node.group(1) in locations.steps:
        return RunbookError(err.message, locations.step_field(node.group(1), node.group(2)))
    meta = re.fullmatch(r"\[runbook\](?:, field '(.+?)')?", rest)
    if meta:
        keys = [k for k in (meta.group(1) or "").split(".") if k]
        if keys:
            keys[0] = {"title": "name"}.get(keys[0], keys[0])
        message = err.message
        if keys and keys[0] == "kpis":  # the seed's KPI names, where and in the message
            keys[1:] = [KPI_NAMES_BACK.get(k, k) for k in keys[1:]]
            message = re.sub(
                r"\b(max_duration|target_success_rate)\b(?!_)", lambda m: KPI_NAMES_BACK[m.group(1)], message
            )
        return RunbookError(message, locations.at(tuple(keys)))
    about = re.match(r"node '(.+?)' (depends on|.*rollback)", err.message)
    if not rest and about and about.group(1) in locations.steps:  # the plan names the node in its message
        field_name = "depends_on" if about.group(2) == "depends on" else "rollback"
        return RunbookError(err.message, locations.step_field(about.group(1), field_name))
    variable = re.fullmatch(r"variable (\w+)(?:, field '(.+?)')?", rest)
    if variable:
        return RunbookError(err.message, locations.at(("variables", variable.group(1))))
    return err


# ---- tables -> YAML (convert) -----------------------------------------------------------------------------


def _jinja_to_dollar(value: Any) -> Any:
    """`{{ expr }}` -> `${expr}` where the template is only substitutions (statements stay Jinja); a literal
    `${` (shell syntax in a command) is escaped as `$${`."""
    if isinstance(value, str):
        value = value.replace("${", "$${")
        if "{%" in value or "{#" in value:
            return value
        return re.sub(r"\{\{\s*(.*?)\s*\}\}", lambda m: "${" + m.group(1) + "}", value)
    if isinstance(value, dict):
        return {k: _jinja_to_dollar(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jinja_to_dollar(v) for v in value]
    return value


def tables_to_yaml(tables: dict[str, Any]) -> str:  # noqa: C901
    """TOML tables (as tomllib reads them) written in the YAML shape."""
    meta = dict(tables.get("runbook", {}))
    doc: dict[str, Any] = {}
    if "id" in meta:
        doc["id"] = meta.pop("id")
    doc["name"] = _jinja_to_dollar(meta.pop("title", doc.get("id", "")))
    for key in ("version", "owner", "legal_basis", "description", "author", "created_at"):
        if key in meta:
            value = meta.pop(key)
            doc[key] = value.isoformat() if hasattr(value, "isoformat") else value
    if "assumptions" in meta:
        doc["assumptions"] = meta.pop("assumptions")
    if "kpis" in meta:
        doc["kpis"] = {KPI_NAMES_BACK.get(k, k): v for k, v in meta.pop("kpis").items()}
    if "plugin_config" in meta:
        doc["plugin_config"] = meta.pop("plugin_config")
    if "description" in doc:
        doc["description"] = _jinja_to_dollar(doc["description"])
    if "variables" in tables:
        doc["variables"] = tables["variables"]
    by_plugin = {v: k for k, v in STEP_TYPES.items() if k not in ("api_call",)}
    by_plugin[("http", "call")] = "api_call"
    steps = []
    for node_id, table in tables.items():
        if node_id in ("runbook", "variables"):
            continue
        table = dict(table)
        step: dict[str, Any] = {"id": node_id}
        kind = table.pop("type")
        if kind == "Function":
            if "function_name" in table:
                table["plugin"], table["function"] = "python", table.pop("function_name").rsplit(".", 1)[1]
            pair = (table.pop("plugin"), table.pop("function"))
            step["type"] = by_plugin.get(pair, f"{pair[0]}.{pair[1]}")
        else:
            step["type"] = kind
        for toml_key, value in table.items():
            name = FIELD_TO_YAML.get(str(toml_key), str(toml_key))  # TOML keys are strings
            if name == "on_failure":
                value = {"continue": "log_and_continue"}.get(value, value)
            elif name not in ("outputs", "depends_on", "rollback"):
                value = _jinja_to_dollar(value)
            step[name] = value
        steps.append(step)
    doc["steps"] = steps
    import yaml

    return yaml.dump(doc, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=110)


@cache
def _dumper() -> type[yaml.SafeDumper]:
    """The safe dumper writing multi-line strings as `|` blocks (made once, at first use)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(str, _str)
    return _Dumper


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)
