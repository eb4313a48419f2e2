"""Step outputs: what a node declares in `outputs`, how the values are taken from an attempt, and the checks
that templates only read outputs of upstream nodes.

Syntax (docs/operations.md):

- Command: ``outputs = "json"`` (stdout is one JSON value; the keys of an object become outputs, any other
  value is the output ``result``), or a table of named extractions::

      outputs = { used_pct = 'regex:(\\d+)% used', mount = "json:disk.mount", raw = "stdout" }

  ``regex:PATTERN`` takes the group named like the output, else group 1, else the whole match (first match in
  stdout); ``json:a.b.0`` walks a path into stdout parsed as JSON (``json:`` alone: the whole value);
  ``stdout`` is the whole stdout without its trailing newline.
- Python: ``outputs = ["needs_cleanup", "total"]``: names the code leaves in the namespace.
- Function: ``outputs = ["result"]``: the return value; other names are keys of a returned dict. Or a table
  of name -> JSONPath into the returned value (OPS-001's shape), ``true`` meaning the key of that name::

      outputs = { entities = "$.data.entities", ids = "$.data.entities[*].id", published = true }

  A JSONPath with one match gives that value; with several (a wildcard), the list of them.

Later nodes read them in any template as ``{{ steps.check_disk.outputs.used_pct }}`` (also
``steps.check_disk.state``). A declared output that cannot be produced fails the attempt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import networkx as nx
from jinja2 import nodes as jnodes

from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.model import Node, NodeType, Runbook
from playbook_nb.domain.template_fields import field_location, template_fields
from playbook_nb.domain.templating import ENV

OUTPUT_EVENT = "outputs"  # the index keeps outputs as a hash-chained event per OK attempt (secrets masked)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OutputError(Exception):
    """A declared output could not be produced from the attempt; the attempt fails with this message."""


def check_output_spec(node: Node, raw: Any, at: str | None) -> Any:  # noqa: C901
    """Validate `outputs` for `node` (its type is set); returns the normalised spec."""
    if node.type is NodeType.COMMAND:
        if raw == "json":
            return "json"
        if not isinstance(raw, dict) or not raw:
            raise RunbookError("expected \"json\" or a table such as { used_pct = 'regex:(\\d+)% used' }", at)
        spec: dict[str, str] = {}
        for name, how in raw.items():
            _check_name(name, at)
            if not isinstance(how, str):
                raise RunbookError(f"output '{name}': expected 'regex:...', 'json:...' or 'stdout'", at)
            if how.startswith("regex:"):
                try:
                    re.compile(how[len("regex:") :])
                except re.error as err:
                    raise RunbookError(f"output '{name}': invalid regular expression: {err}", at) from None
            elif not (how == "stdout" or how == "json" or how.startswith("json:")):
                raise RunbookError(
                    f"output '{name}': expected 'regex:PATTERN', 'json:PATH' or 'stdout', got {how!r}", at
                )
            spec[name] = how
        return spec
    if isinstance(raw, dict) and node.type is NodeType.FUNCTION and raw:
        table: dict[str, Any] = {}
        for name, how in raw.items():
            _check_name(name, at)
            if how is True:
                table[name] = True
            elif isinstance(how, str) and how.startswith("$"):
                _jsonpath(how, name, at)
                table[name] = how
            else:
                raise RunbookError(
                    f"output '{name}': expected a JSONPath such as \"$.data.items\" or true, got {how!r}", at
                )
        return table
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise RunbookError('expected a list of names such as ["total", "needs_cleanup"]', at)
    for name in raw:
        if not isinstance(name, str):
            raise RunbookError(f"expected names (strings), got {name!r}", at)
        _check_name(name, at)
    if len(set(raw)) != len(raw):
        raise RunbookError("an output name is listed twice", at)
    return list(raw)


def _check_name(name: Any, at: str | None) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RunbookError(f"output name {name!r} must be an identifier", at)


# ---- extraction ------------------------------------------------------------------------------------------


def extract_outputs(node: Node, result: Any, namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The outputs of a successful attempt of `node` (`result`: its AttemptResult, read for stdout and the
    return value). Raises OutputError when one cannot be produced."""
    spec = node.outputs
    if spec is None:
        return {}
    if node.type is NodeType.COMMAND:
        if spec == "json":
            value = _stdout_json(result.stdout)
            return dict(value) if isinstance(value, dict) else {"result": value}
        return {name: _extract_command(name, how, result.stdout) for name, how in spec.items()}
    if node.type is NodeType.PYTHON:
        missing = [name for name in spec if name not in (namespace or {})]
        if missing:
            raise OutputError(f"output '{missing[0]}' is not defined by the code")
        return {name: _plain((namespace or {})[name]) for name in spec}
    value = result.return_value
    if isinstance(spec, dict):
        return {name: _extract_function(name, how, value) for name, how in spec.items()}
    outputs = {}
    for name in spec:
        if name == "result":
            outputs[name] = _plain(value)
        elif isinstance(value, Mapping) and name in value:
            outputs[name] = _plain(value[name])
        else:
            raise OutputError(f"output '{name}' is not a key of the returned value")
    return outputs


def _jsonpath(expression: str, name: str, at: str | None = None):
    # at use: jsonpath_ng (and its parser tables) cost 4 ms at every start, and only outputs need it
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext import parse

    try:
        return parse(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as err:
        message = " ".join(str(err).split())
        raise RunbookError(f"output '{name}': invalid JSONPath {expression!r}: {message}", at) from None


def _extract_function(name: str, how: Any, value: Any) -> Any:
    if how is True:
        if isinstance(value, Mapping) and name in value:
            return _plain(value[name])
        raise OutputError(f"output '{name}' is not a key of the returned value")
    matches = [m.value for m in _jsonpath(how, name).find(value)]
    if not matches:
        raise OutputError(f"output '{name}': {how} matched nothing in the returned value")
    wildcard = any(token in how for token in ("*", "..", "?", ":"))
    return _plain(matches if wildcard or len(matches) > 1 else matches[0])


def _extract_command(name: str, how: str, stdout: str) -> Any:
    if how == "stdout":
        return stdout.rstrip("\n")
    if how.startswith("regex:"):
        pattern = re.compile(how[len("regex:") :], re.MULTILINE)
        match = pattern.search(stdout)
        if match is None:
            raise OutputError(f"output '{name}': pattern {pattern.pattern!r} did not match stdout")
        if name in pattern.groupindex:
            return match.group(name)
        return match.group(1) if pattern.groups else match.group(0)
    value = _stdout_json(stdout)
    path = how[len("json:") :] if how.startswith("json:") else ""
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise OutputError(f"output '{name}': stdout JSON has no '{path}'")
    return value


def _stdout_json(stdout: str) -> Any:
    try:
        return json.loads(stdout)
    except ValueError as err:
        raise OutputError(f"outputs: stdout is not JSON ({err})") from None


def _plain(value: Any) -> Any:
    """JSON-safe copy (the index stores JSON); anything else becomes its repr()."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, OverflowError, RecursionError):
        return repr(value)


# ---- static checks ---------------------------------------------------------------------------------------


def step_references(text: str) -> list[tuple[str, str | None]]:
    """(node id, output name or None) for every `steps.X.outputs.Y` / `steps['X'].outputs['Y']` (and
    `steps.X` alone) in a template."""
    try:
        ast = ENV.parse(text)
    except Exception:
        return []
    found: list[tuple[str, str | None]] = []
    inner: set[int] = set()
    for item in ast.find_all((jnodes.Getattr, jnodes.Getitem)):
        assert isinstance(item, jnodes.Getattr | jnodes.Getitem)  # what find_all was asked for
        chain = _chain(item)
        if chain is None or id(item) in inner:
            continue
        # mark every sub-expression of the chain, so only the longest one is reported
        sub = item.node
        while isinstance(sub, jnodes.Getattr | jnodes.Getitem):
            inner.add(id(sub))
            sub = sub.node
        if len(chain) >= 1:
            node_id = chain[0]
            name = chain[2] if len(chain) >= 3 and chain[1] == "outputs" else None
            found.append((node_id, name))
    return found


def _chain(item) -> list[str] | None:
    """['X', 'outputs', 'Y'] for steps.X.outputs.Y; None when the expression is not rooted at `steps`."""
    parts: list[str] = []
    while isinstance(item, jnodes.Getattr | jnodes.Getitem):
        if isinstance(item, jnodes.Getattr):
            parts.append(item.attr)
        elif isinstance(item.arg, jnodes.Const) and isinstance(item.arg.value, str):
            parts.append(item.arg.value)
        else:
            parts = []  # a computed key: nothing can be checked beyond it
        item = item.node
    if isinstance(item, jnodes.Name) and item.name == "steps" and parts:
        return list(reversed(parts))
    return None


def check_output_references(runbook: Runbook, graph: nx.DiGraph) -> None:
    """Every `steps.X.outputs.Y` names an upstream (transitively) node X that declares output Y."""
    for node_id, field_name, text in template_fields(runbook):
        if "steps" not in text:
            continue
        at = field_location(runbook, node_id, field_name)
        for source, name in step_references(text):
            if source not in runbook.nodes:
                raise RunbookError(f"steps.{source}: unknown node '{source}'", at)
            if node_id is None or source not in nx.ancestors(graph, node_id):
                who = f"'{node_id}'" if node_id else "the [runbook] table"
                raise RunbookError(
                    f"steps.{source}: node '{source}' is not upstream of {who}, so its outputs are not "
                    f"known there (add it to depends_on)",
                    at,
                )
            if name is None:
                continue
            declared = runbook.nodes[source].output_names
            if "*" not in declared and name not in declared:
                listed = ", ".join(declared) or "none"
                raise RunbookError(
                    f"steps.{source}.outputs.{name}: node '{source}' declares no output '{name}' "
                    f"(its outputs: {listed})",
                    at,
                )
