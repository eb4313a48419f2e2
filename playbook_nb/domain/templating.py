"""The one sandboxed Jinja2 environment for everything a runbook author writes: rendering, shell quoting,
and the static checks `validate` runs before anything executes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from playbook_nb.domain.errors import RunbookError, TemplateError
from playbook_nb.domain.values import VARIABLE_TYPES, ConversionError, bool_word, convert

# Names every template may use besides the runbook's variables.
RUN_NAMES = frozenset({"has_succeeded", "has_failed", "steps", "execution"})
# A key no template can name (it is not an identifier), so only render_command can turn quoting on.
_QUOTE_KEY = "playbook.shell_quote"


class RawValue(str):
    """Marks a value the template author asked not to shell-quote (`{{ X | raw }}`)."""


class SecretRef(str):
    """A secret variable in a command: the command line holds a reference to an environment variable,
    never the value (`ps` and /proc/PID/cmdline show every local user a process's arguments). The text is
    the raw reference `${NAME}`; shell-quoted it is written `"$NAME"`. See `secret_command_context`."""

    env_name: str

    def __new__(cls, env_name: str) -> SecretRef:
        ref = super().__new__(cls, "${" + env_name + "}")
        ref.env_name = env_name
        return ref


def secret_env_name(name: str) -> str:
    """The environment variable a secret variable reaches a command through: its own name (made a valid
    shell name when it is not one)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def secret_command_context(
    context: Mapping[str, Any], secret_names: Iterable[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(a command's template context with each secret variable replaced by its `SecretRef`, the environment
    that gives the command the values: {environment variable: value})."""
    context = dict(context)
    environ: dict[str, str] = {}
    for name in secret_names:
        if context.get(name) is None:
            continue
        env_name = secret_env_name(name)
        environ[env_name] = _as_text(context[name])
        context[name] = SecretRef(env_name)
    return context, environ


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    if context.get(_QUOTE_KEY) and not isinstance(value, RawValue):
        if isinstance(value, SecretRef):
            return f'"${value.env_name}"'
        return shlex.quote(_as_text(value))
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _make_env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, finalize=_finalize, keep_trailing_newline=True
    )
    env.filters["raw"] = lambda value: RawValue(_as_text(value))
    env.globals["len"] = len  # OPS-001 writes ${len(steps.x.outputs.items)}
    return env


ENV = _make_env()


@lru_cache(maxsize=1024)
def _compile(template: str):
    return ENV.from_string(template)


def _one_line(text: object) -> str:
    """A message (or an exception's text) on one line."""
    return " ".join(str(text).split())


def _not_in_run(name: str) -> Callable[[str], bool]:
    def unavailable(node_id: str) -> bool:
        raise TemplateError(f"{name}('{node_id}') is only available while a run is in progress")

    return unavailable


def make_context(
    values: Mapping[str, Any],
    *,
    has_succeeded: Callable[[str], bool] | None = None,
    has_failed: Callable[[str], bool] | None = None,
    steps: Mapping[str, Any] | None = None,
    execution: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Variable values plus the run helpers. Without a run, has_succeeded/has_failed raise a TemplateError.
    `execution` describes the run: id, started_at (ISO text) and duration (seconds so far)."""
    context = dict(values)
    context["has_succeeded"] = has_succeeded or _not_in_run("has_succeeded")
    context["has_failed"] = has_failed or _not_in_run("has_failed")
    context["steps"] = dict(steps or {})
    context["execution"] = dict(execution or {"id": None, "started_at": None, "duration": 0.0})
    return context


def _render(template: str, context: Mapping[str, Any], where: str, quote: bool) -> str:
    if "{" not in template and "\r" not in template:
        # No delimiter ({{, {%, {#), no newline for Jinja to normalise: the text renders as itself (a plain
        # command such as `true` is rendered twice an attempt, for its RUNNING line and its call; issue 18.2).
        return template
    try:
        compiled = _compile(template)
        data = dict(context)
        if quote:
            data[_QUOTE_KEY] = True
        return compiled.render(data)
    except TemplateError as err:
        raise TemplateError(f"{where}: {err}") from None
    except SecurityError as err:
        raise TemplateError(f"{where}: refused by the sandbox: {_one_line(err)}") from None
    except UndefinedError as err:
        raise TemplateError(f"{where}: {_undefined_message(err)}") from None
    except TemplateSyntaxError as err:
        raise TemplateError(
            f"{where}: template syntax error at line {err.lineno}: {_one_line(err.message)}"
        ) from None
    except Exception as err:  # anything the template itself raised (ZeroDivisionError, TypeError, ...)
        raise TemplateError(f"{where}: {type(err).__name__}: {_one_line(err)}") from None


def _undefined_message(err: UndefinedError) -> str:
    message = _one_line(err.message or str(err))
    # "'FOO' is undefined" -> "undefined variable 'FOO'"
    if message.endswith(" is undefined"):
        return f"undefined variable {message.removesuffix(' is undefined')}"
    return message


def render(template: str, context: Mapping[str, Any], where: str = "template") -> str:
    return _render(template, context, where, quote=False)


def render_command(template: str, context: Mapping[str, Any], where: str = "command_name") -> str:
    """Render a shell command: every `{{ }}` value is shell-quoted unless the template applies `| raw`."""
    return _render(template, context, where, quote=True)


def parse_bool(text: str, where: str) -> bool:
    """A rendered `when` / `critical`: one of the true/false words; empty or "none" is False."""
    if text.strip().lower() in ("", "none"):
        return False
    value = bool_word(text)
    if value is None:
        raise TemplateError(f"{where}: expected true or false, got {text.strip()!r}")
    return value


def render_bool(template: str | bool, context: Mapping[str, Any], where: str = "when") -> bool:
    """For `when` and templated `critical`: true/false/1/0/yes/no (any case); empty or none is False."""
    if isinstance(template, bool):
        return template
    return parse_bool(render(template, context, where), where)


def render_int(template: str | int, context: Mapping[str, Any], where: str = "timeout") -> int:
    if isinstance(template, int) and not isinstance(template, bool):
        return template
    text = render(str(template), context, where).strip()
    try:
        return int(text)
    except ValueError:
        raise TemplateError(f"{where}: expected an integer, got {text!r}") from None


def _type_name(declared: Any) -> str | None:
    if declared is None:
        return None
    name = declared if isinstance(declared, str) else getattr(declared, "__name__", str(declared))
    return name if name in VARIABLE_TYPES else None


# A parameter that is one `{{ expression }}` and nothing else keeps the expression's value (a list of step
# outputs stays a list, a number a number) instead of its text.
_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\{\{|\}\}|\{%|%\}).)*)\}\}$", re.S)


@lru_cache(maxsize=1024)
def _compile_expression(source: str):
    return ENV.compile_expression(source, undefined_to_none=False)


def render_value(template: str, context: Mapping[str, Any], where: str = "template") -> Any:
    """Like `render`, but a template that is a single `{{ expression }}` returns the expression's value."""
    match = _WHOLE_EXPRESSION.match(template.strip())
    if match is None or "|" in match.group("expr") and "raw" in match.group("expr"):
        return render(template, context, where)
    try:
        value = _compile_expression(match.group("expr"))(**dict(context))
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined raises the usual "'X' is undefined"
    except TemplateSyntaxError:
        return render(template, context, where)  # let render report it the usual way
    except TemplateError as err:
        raise TemplateError(f"{where}: {err}") from None
    except SecurityError as err:
        raise TemplateError(f"{where}: refused by the sandbox: {_one_line(err)}") from None
    except UndefinedError as err:
        raise TemplateError(f"{where}: {_undefined_message(err)}") from None
    except Exception as err:
        raise TemplateError(f"{where}: {type(err).__name__}: {_one_line(err)}") from None
    return value


def _render_nested(value: Any, context: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return render_value(value, context, where)
    if isinstance(value, dict):
        return {k: _render_nested(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_nested(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def render_params(
    params: Mapping[str, Any],
    context: Mapping[str, Any],
    signature_types: Mapping[str, Any] | str | None = None,
    where: str = "function_params",
) -> dict[str, Any]:
    """Render every string in `params`; top-level values whose declared type is known are converted
    (seed rules: "300" -> 300 for int, "true" -> True for bool, JSON for list and dict).

    `render_params(params, context, "node 'a'")` (a where in third place) is accepted too.
    """
    if isinstance(signature_types, str):
        where, signature_types = f"{signature_types}, field 'function_params'", None
    signature_types = signature_types or {}
    rendered: dict[str, Any] = {}
    for key, value in params.items():
        here = f"{where}.{key}"
        result = _render_nested(value, context, here)
        type_name = _type_name(signature_types.get(key))
        if type_name and isinstance(value, str):
            try:
                result = convert(result, type_name)
            except ConversionError as err:
                raise TemplateError(f"{here}: {result!r} {err.rule}") from None
        rendered[key] = result
    return rendered


# --- static checks -------------------------------------------------------------------------------------


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True)
class _Facts:
    """What the static checks need to know about one template text, found by parsing it once."""

    syntax_error: str | None = None  # the message when the text does not parse
    # unknown filters and tests (always errors) and has_succeeded/has_failed calls (an error when the node
    # named does not exist), in the order the template names them: (message, node id or None)
    problems: tuple[tuple[str, str | None], ...] = ()
    private: str | None = None  # the first attribute or key starting with '_' the author wrote
    names: frozenset[str] = frozenset()  # every name the template reads
    names_error: str | None = None  # Jinja failed while looking for them (constant folding)
    filters: frozenset[str] = frozenset()
    # names read only as the operand of the `default` filter (`{{ OPTIONAL | default('x') }}`): allowed
    # undeclared, as in the seed
    defaulted: frozenset[str] = frozenset()


@lru_cache(maxsize=16384)
def _facts(text: str) -> _Facts:
    """Parse `text` once; `check_template` and the warnings read the result (a runbook repeats its templates,
    and `validate` checks them again after loading)."""
    try:
        ast = ENV.parse(text)
    except TemplateSyntaxError as err:
        return _Facts(syntax_error=f"template syntax error at line {err.lineno}: {_one_line(err.message)}")
    problems: list[tuple[str, str | None]] = []
    private: list[str] = []
    filters: set[str] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test, nodes.Call)):
        if isinstance(node, nodes.Getattr):
            private.append(node.attr)
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                private.append(node.arg.value)
        elif isinstance(node, nodes.Filter):
            filters.add(node.name)
            if node.name not in ENV.filters:
                problems.append((f"unknown filter '{node.name}'", None))
            if node.name == "attr":
                private.extend(
                    a.value for a in node.args if isinstance(a, nodes.Const) and isinstance(a.value, str)
                )
        elif isinstance(node, nodes.Test):
            if node.name not in ENV.tests:
                problems.append((f"unknown test '{node.name}'", None))
        elif (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and node.node.name in ("has_succeeded", "has_failed")
        ):
            for arg in node.args:
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    message = f"{node.node.name}('{arg.value}'): unknown node '{arg.value}'"
                    problems.append((message, arg.value))
    private = [name for name in private if name.startswith("_")]
    first_private = min(private, key=text.find) if private else None  # the one the author wrote first
    try:
        names, names_error = frozenset(find_undeclared_variables(ast)), None
    except JinjaTemplateError as err:  # Jinja folds constants while looking (`''[0]` raises there)
        names, names_error = frozenset(), f"template error: {err}"
    defaulted = _only_defaulted(ast, names)
    return _Facts(None, tuple(problems), first_private, names, names_error, frozenset(filters), defaulted)


_DEFAULT_FILTERS = ("default", "d")


def _only_defaulted(ast: nodes.Template, names: frozenset[str]) -> frozenset[str]:
    """Of `names`, those whose every read is `NAME | default(...)`."""
    under_default = {
        id(f.node)
        for f in ast.find_all(nodes.Filter)
        if f.name in _DEFAULT_FILTERS and isinstance(f.node, nodes.Name)
    }
    reads: dict[str, list[bool]] = {}
    for name_node in ast.find_all(nodes.Name):
        if name_node.ctx == "load" and name_node.name in names:
            reads.setdefault(name_node.name, []).append(id(name_node) in under_default)
    return frozenset(name for name, flags in reads.items() if all(flags))


def clear_caches() -> None:
    """Forget parsed and compiled templates (a benchmark measuring a fresh process calls this)."""
    _facts.cache_clear()
    _compile.cache_clear()


def check_template(text: str, where: str, declared: set[str], node_ids: set[str] | None = None) -> set[str]:
    """Parse `text` and refuse what would fail or escape at run time. Returns the variable names it uses.

    Refused: syntax errors, undeclared variables, unknown filters/tests, attributes or keys starting with
    '_' (the way out of a sandbox), and has_succeeded/has_failed of a node that does not exist.
    """
    if not is_template(text):  # plain text: nothing to parse
        return set()
    facts = _facts(text)
    if facts.syntax_error:
        raise RunbookError(facts.syntax_error, where)
    for message, node_id in facts.problems:
        if node_id is None or (node_ids is not None and node_id not in node_ids):
            raise RunbookError(message, where)
    if facts.private:
        raise RunbookError(
            f"template reaches for Python internals ('{facts.private}'); refused by the sandbox", where
        )
    if facts.names_error:
        raise RunbookError(facts.names_error, where)
    used = facts.names - set(ENV.globals) - RUN_NAMES
    for name in sorted(used):
        if name not in declared and name not in facts.defaulted:
            raise RunbookError(f"undefined variable '{name}'", where)
    return {name for name in used if name in declared}


def _valid_facts(text: str) -> _Facts:
    """Facts of a template that is expected to be valid: Jinja's syntax error, or a RunbookError, if not."""
    facts = _facts(text)
    if facts.syntax_error:
        ENV.parse(text)  # raises the TemplateSyntaxError
    if facts.names_error:
        raise RunbookError(facts.names_error)
    return facts


def variables_used(text: str) -> set[str]:
    """Variable names a (syntactically valid) template reads."""
    return set(_valid_facts(text).names - set(ENV.globals) - RUN_NAMES)


def uses_raw(text: str) -> bool:
    """True where a template opts out of shell quoting with the `raw` filter."""
    return "raw" in _facts(text).filters


def raw_names(text: str) -> set[str]:
    """Names a template passes straight to the `raw` filter (`{{ NAME | raw }}`)."""
    if "raw" not in _facts(text).filters:
        return set()
    return {
        f.node.name
        for f in ENV.parse(text).find_all(nodes.Filter)
        if f.name == "raw" and isinstance(f.node, nodes.Name)
    }


def calls_run_helpers(text: str) -> bool:
    """True if the template depends on run state (has_succeeded, has_failed, steps)."""
    return bool(_valid_facts(text).names & RUN_NAMES)
