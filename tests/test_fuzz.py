"""Fuzzing with hypothesis: the TOML loader and the template sandbox.

- `parse_runbook` / `load_runbook` on generated documents (random tables, fields and values, known and
  unknown), on mutated fixture runbooks and on random bytes: a Runbook, or a PlaybookError whose message is
  one line. Never another exception.
- The templating on random template strings built from the pieces sandbox escapes are made of (dunder
  attributes, subscripts, `attr`, `format`, calls on `cycler`, `joiner`, `namespace`, `lipsum`, `range`):
  only TemplateError / RunbookError with one-line messages, and a marker file that a successful escape would
  create (`os.system("touch ...")`, `__import__('os')`, `subprocess` ...) never appears.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import pytest
from conftest import FIXTURES, VALID_RUNBOOKS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from playbook_nb.app.inputs import load_runbook
from playbook_nb.domain import templating
from playbook_nb.domain.errors import PlaybookError, RunbookError, TemplateError
from playbook_nb.domain.parsing import COMMON_FIELDS, META_FIELDS, TYPE_FIELDS, VARIABLE_FIELDS
from playbook_nb.domain.validation import parse_runbook, validate_runbook

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _assert_one_line_playbook_error(err: BaseException) -> None:
    assert isinstance(err, PlaybookError), f"{type(err).__name__}: {err}"
    message = str(err)
    assert message.strip(), "empty error message"
    assert "\n" not in message and "\r" not in message, repr(message)
    assert "Traceback" not in message


def _parse_or_error(text: str):
    try:
        runbook = parse_runbook(text, "fuzz.playbook.toml")
    except PlaybookError as err:
        _assert_one_line_playbook_error(err)
        return None
    # What `validate` does after a successful load must not blow up either.
    report = validate_runbook(runbook)
    for line in report.errors + report.warnings:
        assert "\n" not in line, repr(line)
    return runbook


# --- generated TOML documents ------------------------------------------------------------------------------

NODE_FIELDS = sorted(COMMON_FIELDS | set().union(*TYPE_FIELDS.values()))
KEYS = st.one_of(
    st.sampled_from(NODE_FIELDS + sorted(META_FIELDS) + sorted(VARIABLE_FIELDS)),
    st.text(min_size=1, max_size=12),
)
NODE_IDS = st.one_of(
    st.sampled_from(["a", "b", "c", "deploy", "check", "^", "*", "x:y", "runbook", "variables"]),
    st.text(min_size=0, max_size=8),
)
TEMPLATES = st.sampled_from(
    [
        "{{ ENV }}",
        "{{ has_succeeded('a') }}",
        "{{ has_failed('zz') }}",
        "{{ ENV.__class__ }}",
        "{{ x |nope }}",
        "{% if %}",
        "{{ UNDEFINED }}",
        "echo {{ ENV | raw }}",
        "{{ 1/0 }}",
        "{{ ENV == 'prod' }}",
    ]
)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    TEMPLATES,
    st.sampled_from(["Command", "Manual", "Function", "Python", "command", "^", "*", "a:success", "a:bogus"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _toml_key(key: str) -> str:
    if key and all(c in string.ascii_letters + string.digits + "_-" for c in key):
        return key
    return json.dumps(key)  # a basic string; JSON escapes are TOML escapes (surrogates make it invalid TOML)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _table(name: str, fields: dict) -> str:
    lines = [f"[{_toml_key(name)}]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in fields.items()]
    return "\n".join(lines)


@st.composite
def documents(draw) -> str:
    tables = []
    meta = {"title": draw(st.one_of(st.text(max_size=10), TEMPLATES))}
    meta.update(draw(st.dictionaries(KEYS, VALUES, max_size=3)))
    if draw(st.integers(0, 9)) == 0:
        meta.pop("title")
    tables.append(_table("runbook", meta))
    if draw(st.booleans()):
        variables = draw(
            st.dictionaries(
                st.sampled_from(["ENV", "x", "has_failed", "1bad", "TARGET"]),
                st.one_of(
                    VALUES, st.dictionaries(st.sampled_from(sorted(VARIABLE_FIELDS)), VALUES, max_size=4)
                ),
                max_size=3,
            )
        )
        tables.append(_table("variables", variables))
    for _ in range(draw(st.integers(0, 5))):
        node_type = draw(st.sampled_from(["Command", "Manual", "Function", "Python", "Nope"]))
        fields = {"type": node_type}
        if node_type == "Command" and draw(st.booleans()):
            fields["command_name"] = draw(st.one_of(st.text(max_size=10), TEMPLATES))
        if node_type == "Python" and draw(st.booleans()):
            fields["code"] = draw(st.sampled_from(["x = 1", "print(ENV)", "def (", ""]))
        fields.update(draw(st.dictionaries(st.sampled_from(NODE_FIELDS), VALUES, max_size=3)))
        fields.update(draw(st.dictionaries(KEYS, VALUES, max_size=1)))
        tables.append(_table(draw(NODE_IDS), fields))
    if draw(st.integers(0, 9)) == 0:
        tables.append(f"{_toml_key(draw(NODE_IDS))} = {_toml_value(draw(VALUES))}")
    return "\n\n".join(tables) + "\n"


@FUZZ
@given(documents())
@example("[runbook]\ntitle = 'x'\n[a]\ntype = 'Command'\ncommand_name = 'true'\n\"b\\nc\" = 1\n")
@example("[runbook]\ntitle = 'x'\n[\"a\\nb\"]\ntype = 'Command'\ncommand_name = 'true'\n")
@example('[runbook]\ntitle = "x"\n[variables]\n"A\\nB" = 1\n[a]\ntype = "Command"\ncommand_name = "true"\n')
def test_generated_documents_load_or_fail_with_one_line(text):
    _parse_or_error(text)


FIXTURE_TEXTS = [p.read_text() for p in VALID_RUNBOOKS] or ["[runbook]\ntitle = 'x'\n"]


@FUZZ
@given(
    st.sampled_from(FIXTURE_TEXTS),
    st.lists(
        st.tuples(
            st.floats(0, 1),
            st.integers(0, 8),
            st.text(
                alphabet=st.sampled_from(list("[]{}\"'=:.,\n#\\ ^*_-aZ09") + ["\u00e9", "\x00"]), max_size=4
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_fixture_runbooks_load_or_fail_with_one_line(text, edits):
    for position, delete, insert in edits:
        at = int(position * len(text))
        text = text[:at] + insert + text[at + delete :]
    _parse_or_error(text)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_load_or_fail_with_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bytes.playbook.toml"
        path.write_bytes(data)
        try:
            load_runbook(path)
        except PlaybookError as err:
            _assert_one_line_playbook_error(err)
    _parse_or_error(data.decode("utf-8", "replace"))


def test_fixture_directory_is_there():
    """The mutation test needs real runbooks to mutate."""
    assert FIXTURES.is_dir() and VALID_RUNBOOKS


# --- templates: the sandbox --------------------------------------------------------------------------------

MARKER_DIR = Path(tempfile.mkdtemp(prefix="playbook-nb-fuzz-"))
MARKER = MARKER_DIR / "ESCAPED"
TOUCH = f"touch {MARKER}"

# Classic server-side template injection payloads, each of which would create MARKER if it got out.
ESCAPES = [
    f"{{{{ cycler.__init__.__globals__.os.system('{TOUCH}') }}}}",
    f"{{{{ joiner.__init__.__globals__.os.popen('{TOUCH}').read() }}}}",
    f"{{{{ namespace.__init__.__globals__.os.system('{TOUCH}') }}}}",
    f"{{{{ lipsum.__globals__['os'].system('{TOUCH}') }}}}",
    f"{{{{ lipsum.__globals__.__builtins__.__import__('os').system('{TOUCH}') }}}}",
    f"{{{{ range.__init__.__globals__ }}}}{{{{ self.__init__.__globals__.__builtins__.__import__('os').system('{TOUCH}') }}}}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    f"{{% for c in ''.__class__.__mro__[1].__subclasses__() %}}{{% if c.__name__ == 'Popen' %}}{{{{ c('{TOUCH}', shell=True) }}}}{{% endif %}}{{% endfor %}}",
    "{{ ''|attr('__class__')|attr('__mro__')|last|attr('__subclasses__')() }}",
    "{{ (ENV|attr('__class__')).__base__.__subclasses__() }}",
    f"{{{{ ENV['__class__'] }}}}{{{{ has_succeeded.__globals__['os'].system('{TOUCH}') }}}}",
    f"{{{{ has_failed.__globals__.__builtins__['__import__']('os').system('{TOUCH}') }}}}",
    "{{ '{0.__globals__[os].system}'.format(cycler.__init__) }}",
    "{{ '{0.__class__.__mro__}'.format(ENV) }}",
    f"{{{{ ENV.format_map }}}}{{{{ config.__class__.__init__.__globals__['os'].system('{TOUCH}') }}}}",
    f"{{{{ request.application.__globals__.__builtins__.__import__('os').popen('{TOUCH}') }}}}",
    "{{ steps.__class__.__subclasses__ }}{{ steps.update.__self__.__class__.__mro__ }}",
    f"{{{{ ().__class__.__bases__[0].__subclasses__()[0].__init__.__globals__['sys'].modules['os'].system('{TOUCH}') }}}}",
    f"{{% set x = cycler.__init__.__globals__ %}}{{{{ x.os.system('{TOUCH}') }}}}",
    "{{ ENV|map(attribute='__class__')|list }}",
    "{{ [ENV]|map('attr', '__class__')|list }}",
    "{{ dict(a=1).__class__.__init__.__globals__ }}",
    "{{ ENV.__len__.__self__.__class__.__subclasses__() }}",
    "{{ 'x'.__class__.__dict__['join'].__globals__ }}",
    f"{{{{ namespace().__class__.__init__.__globals__['__builtins__']['exec']('import os; os.system(\"{TOUCH}\")') }}}}",
    f"{{{{ lipsum.__globals__.os.system('{TOUCH}') | raw }}}}",
]

NAMES = ["ENV", "N", "L", "D", "cycler", "joiner", "namespace", "lipsum", "range", "dict", "self", "has_succeeded", "has_failed", "steps", "config", "os", "__import__", "x"]  # fmt: skip
ATTRS = ["__class__", "__mro__", "__subclasses__", "__globals__", "__init__", "__builtins__", "__import__", "__base__", "__bases__", "__dict__", "__self__", "__func__", "__code__", "__closure__", "__getattribute__", "__reduce_ex__", "mro", "format", "format_map", "os", "system", "popen", "upper", "join", "items", "keys", "gi_frame", "f_globals", "_TemplateReference__context", "environment", "globals"]  # fmt: skip
FILTERS = ["attr('__class__')", "attr('__globals__')", "attr(x)", "map(attribute='__class__')", "join", "string", "list", "first", "last", "int", "raw", "safe", "e", "format(ENV)", "length", "default('x')", "selectattr('__class__')", "nope"]  # fmt: skip
ARGS = ["", "0", "'os'", f"'{TOUCH}'", "ENV", "1, 2", "x=1"]


@st.composite
def expressions(draw, depth: int = 0):
    kind = draw(st.integers(0, 6 if depth < 3 else 1))
    if kind == 0:
        return draw(st.sampled_from(NAMES))
    if kind == 1:
        return draw(
            st.sampled_from(["''", "'{0.__class__}'", "0", "[]", "{}", "()", "'a'", "1.5", "none", "true"])
        )
    inner = draw(expressions(depth + 1))
    if kind == 2:
        return f"{inner}.{draw(st.sampled_from(ATTRS))}"
    if kind == 3:
        key = draw(st.one_of(st.sampled_from([f"'{a}'" for a in ATTRS]), st.integers(-2, 3).map(str)))
        return f"{inner}[{key}]"
    if kind == 4:
        return f"{inner}|{draw(st.sampled_from(FILTERS))}"
    if kind == 5:
        return f"{inner}({draw(st.sampled_from(ARGS))})"
    other = draw(expressions(depth + 1))
    return f"({inner} {draw(st.sampled_from(['~', '+', '==', 'and', 'or', 'in', '%']))} {other})"


@st.composite
def templates(draw):
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        expr = draw(expressions())
        shape = draw(st.integers(0, 4))
        if shape == 0:
            parts.append(f"{{{{ {expr} }}}}")
        elif shape == 1:
            parts.append(f"{{% if {expr} %}}y{{% endif %}}")
        elif shape == 2:
            parts.append(f"{{% for i in {expr} %}}{{{{ i }}}}{{% endfor %}}")
        elif shape == 3:
            parts.append(f"{{% set v = {expr} %}}{{{{ v }}}}")
        else:
            parts.append(draw(st.sampled_from(["text ", "{{", "}}", "{%", "{# c #}", "{{ ", " %}"])))
    return "".join(parts)


CONTEXT = templating.make_context(
    {"ENV": "prod", "N": 3, "L": [1, 2], "D": {"k": "v"}, "x": "__class__"},
    has_succeeded=lambda node_id: True,
    has_failed=lambda node_id: False,
)


def _render_everywhere(template: str) -> None:
    for render in (templating.render, templating.render_command, templating.render_bool):
        try:
            render(template, CONTEXT, "node 'fuzz', field 'when'")
        except PlaybookError as err:
            assert isinstance(err, TemplateError), type(err)
            _assert_one_line_playbook_error(err)
    try:
        templating.check_template(template, "fuzz: node 'a'", {"ENV", "N", "L", "D", "x"}, {"a"})
    except PlaybookError as err:
        assert isinstance(err, RunbookError), type(err)
        _assert_one_line_playbook_error(err)
    assert not MARKER.exists(), f"sandbox escaped with {template!r}"


# Payloads the static check (`validate`) does not see; at run time the sandbox refuses them or renders
# placeholders (`map(attribute='__class__')` gives `[Undefined, ...]`).
STATIC_GAPS = {
    "{{ '{0.__class__.__mro__}'.format(ENV) }}",
    "{{ ENV|map(attribute='__class__')|list }}",
    "{{ [ENV]|map('attr', '__class__')|list }}",
}


# Ids by position: the payloads hold a temporary path, and pytest-xdist needs ids that are the same in every worker.
@pytest.mark.parametrize("payload", ESCAPES, ids=[f"escape-{i}" for i in range(len(ESCAPES))])
def test_known_escapes_never_execute(payload):
    _render_everywhere(payload)
    if payload in STATIC_GAPS:
        try:
            shown = templating.render(payload, CONTEXT, "node 'a'")
        except TemplateError as err:
            assert "sandbox" in str(err), err
        else:  # rendered, but only with placeholders: nothing of the object leaked
            assert "<class" not in shown and "mro" not in shown, shown
        return
    with pytest.raises(RunbookError, match="refused|undefined|unknown"):
        templating.check_template(payload, "fuzz: node 'a'", {"ENV"}, {"a"})


def test_the_marker_would_be_noticed():
    """The escape check is not vacuous: the same command, run for real, creates the marker."""
    import subprocess

    probe = MARKER_DIR / "probe"
    subprocess.run(TOUCH.replace(str(MARKER), str(probe)), shell=True, check=True)
    assert probe.exists()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates())
def test_random_templates_stay_in_the_sandbox(template):
    _render_everywhere(template)


@FUZZ
@given(
    st.lists(st.sampled_from(list("{}%#()[]|.'\"_ ~+-*/=!<>,:0") + NAMES[:8] + ATTRS[:8]), max_size=30).map(
        "".join
    )
)
def test_random_template_text_fails_cleanly(template):
    _render_everywhere(template)


def test_runbook_with_an_escape_in_when_is_refused_before_running():
    text = (
        "[runbook]\ntitle = 'x'\n[a]\ntype = 'Command'\ncommand_name = 'true'\n"
        f"when = {json.dumps(ESCAPES[0])}\n"
    )
    with pytest.raises(RunbookError, match="Python internals"):
        parse_runbook(text, "escape.playbook.toml")
    assert not MARKER.exists()
