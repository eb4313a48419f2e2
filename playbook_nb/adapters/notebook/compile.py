"""Compile a runbook into a self-contained notebook (cells rendered from `templates/notebook_*.j2`).

Cell layout (the contract with `playbook_nb.kernel_ext`; roles are in `cell.metadata["playbook_nb"]["role"]`):

1. markdown title cell (`title`): title, description, version, author, short sha256, how to run, variables;
2. code cell tagged `parameters` (`parameters`): papermill parameters, no secret values: one typed and
   commented parameter per runbook variable (`ENVIRONMENT: str = None  # Target environment; one of: ...;
   required`, what `papermill --help-notebook` lists), then the control parameters (variables, approvals,
   gate_policy, actor, run_id, ...);
3. code cell `RUNBOOK_TOML = <literal>` (`runbook_source`, source hidden): the exact runbook text;
4. setup code cell (`setup`): `%load_ext playbook_nb`, `pb = open_run(...)` (from `playbook_nb.kernel_ext`), `pb.show()`;
5. per node, in topological order: a markdown cell (`node_doc`) and a code cell (`node`):
   `%playbook_node <id>`, or `%%playbook_node <id>` followed by the node's code for a Python node;
6. summary code cell (`summary`): `pb.summary()`.

The Jinja2 environment here renders our own templates only; runbook text is passed as values, never as
template source (runbook templates go through the sandbox in `playbook_nb.domain.templating`).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import keyword
import os
import re
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from playbook_nb.adapters.notebook.light_nbformat import nbformat
from playbook_nb.adapters.notebook.source_cell import SOURCE_VARIABLE, python_string_literal
from playbook_nb.constants import TEMPLATE_PACKAGE, VERSION
from playbook_nb.domain.model import Node, NodeType, Runbook, Variable

METADATA_KEY = "playbook_nb"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

ROLE_TITLE = "title"
ROLE_PARAMETERS = "parameters"
ROLE_SOURCE = "runbook_source"
ROLE_SETUP = "setup"
ROLE_NODE_DOC = "node_doc"
ROLE_NODE = "node"
ROLE_SUMMARY = "summary"


def _load_template(name: str) -> str | None:
    resource = resources.files(TEMPLATE_PACKAGE).joinpath(name)
    if not resource.is_file():
        return None
    return resource.read_text(encoding="utf-8")


def _inline_code(value: Any) -> str:
    """Markdown inline code whose fence is longer than any backtick run inside."""
    text = str(value).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _code_block(value: Any, language: str = "") -> str:
    """Markdown fenced code block whose fence is longer than any backtick run inside."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _json_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def template_environment() -> jinja2.Environment:
    """The (non-sandboxed) environment for our own notebook cell templates, loaded from the package."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["code"] = _inline_code
    env.filters["fence"] = _code_block
    env.filters["tojson_pretty"] = _json_pretty
    return env


_ENV: jinja2.Environment | None = None


def _render(name: str, **context: Any) -> str:
    global _ENV
    if _ENV is None:
        _ENV = template_environment()
    return _ENV.get_template(name).render(**context).rstrip("\n")


# Names of the parameters cell and the setup cell that a runbook variable must not take as a parameter.
CONTROL_PARAMETERS = frozenset(
    {
        "variables", "secret_env", "approvals", "gate_policy", "actor", "comment", "run_id", "state_path",
        "allow_changed_vars", "max_retries", "gate_wait", "headless", "parallel", "pb", "open_run",
        "open_record", SOURCE_VARIABLE,
    }
)  # fmt: skip
ANNOTATIONS = {"str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list", "dict": "dict"}


@dataclass(frozen=True)
class VariableParameter:
    """One line of the parameters cell: `NAME: type = default  # description; one of: ...; required`."""

    name: str
    annotation: str
    literal: str
    comment: str


def _comment(variable: Variable) -> str:
    parts = [" ".join(variable.description.split())] if variable.description else []
    if variable.choices:
        parts.append("one of: " + ", ".join(str(choice) for choice in variable.choices))
    if variable.min is not None:
        parts.append(f"min {variable.min}")
    if variable.max is not None:
        parts.append(f"max {variable.max}")
    if variable.pattern:
        parts.append(f"matches {variable.pattern}")
    parts.append("required" if variable.required and not variable.has_default else "optional")
    # papermill skips a parameter line holding a second "=": keep the comment free of it.
    return "; ".join(parts).replace("=", "≡")


def variable_parameters(runbook: Runbook) -> tuple[list[VariableParameter], list[str]]:
    """The runbook's variables as papermill parameters (secrets never), and the names that can only be given
    through the `variables` dict (not a Python identifier, a keyword, a builtin or a control parameter)."""
    params: list[VariableParameter] = []
    dict_only: list[str] = []
    for name, variable in runbook.variables.items():
        if variable.secret or name in runbook.secret_names:
            continue
        if (
            not name.isidentifier()
            or keyword.iskeyword(name)
            or name in CONTROL_PARAMETERS
            or hasattr(builtins, name)
            or name.startswith("_")
        ):
            dict_only.append(name)
            continue
        params.append(
            VariableParameter(
                name=name,
                annotation=ANNOTATIONS.get(variable.type, "str"),
                literal=repr(variable.default),
                comment=_comment(variable),
            )
        )
    return params, dict_only


def _cell_id(prefix: str, name: str = "") -> str:
    """A deterministic cell id (nbformat: [a-zA-Z0-9-_], 1 to 64 characters), so recompiles diff cleanly."""
    if not name:
        return prefix
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    if safe != name or len(prefix) + 1 + len(safe) > 64:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[: 64 - len(prefix) - 10]}-{digest}"
    return f"{prefix}-{safe}"


def _role(role: str, **extra: Any) -> dict[str, Any]:
    return {METADATA_KEY: {"role": role, **extra}}


# The cells as nbformat.v4.new_markdown_cell / new_code_cell build them, without their validation of each
# cell: compile_runbook validates the whole notebook once (0.045 s of CPU less for 200 nodes, issue 18.3).
def _markdown(source: str, cell_id: str, metadata: dict[str, Any]) -> nbformat.NotebookNode:
    return nbformat.from_dict(
        {"id": cell_id, "cell_type": "markdown", "source": source, "metadata": metadata}
    )


def _code(source: str, cell_id: str, metadata: dict[str, Any]) -> nbformat.NotebookNode:
    return nbformat.from_dict(
        {
            "id": cell_id,
            "cell_type": "code",
            "metadata": metadata,
            "execution_count": None,
            "source": source,
            "outputs": [],
        }
    )


def node_cell_source(node: Node) -> str:
    """Source of a node's code cell: `%playbook_node <id>`, or `%%playbook_node <id>` + code (Python)."""
    code = (node.code or "").rstrip("\n") if node.type is NodeType.PYTHON else ""
    return _render("notebook_node.py.j2", node=node, code=code)


def compile_runbook(
    runbook: Runbook, *, source_path: str | None = None, kernelspec: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """Build the notebook for `runbook` (see the module docstring for the cell layout); `kernelspec` (name,
    display_name, language) is the kernel it asks for, `python3` by default."""
    from playbook_nb.domain.plan import topological_order

    source_path = source_path if source_path is not None else runbook.path
    source_path = str(source_path) if source_path is not None else None
    sha256 = runbook.sha256 or hashlib.sha256(runbook.source_text.encode("utf-8")).hexdigest()

    cells: list[nbformat.NotebookNode] = [
        _markdown(
            _render(
                "notebook_title.md.j2",
                meta=runbook.meta,
                sha256=sha256,
                source_path=source_path,
                variables=list(runbook.variables.values()),
            ),
            "playbook-title",
            _role(ROLE_TITLE),
        ),
    ]
    params, dict_only = variable_parameters(runbook)
    parameters = _code(
        _render(
            "notebook_parameters.py.j2",
            variable_parameters=params,
            dict_only=dict_only,
            secrets=sorted(runbook.secret_names),
        ),
        "playbook-parameters",
        _role(ROLE_PARAMETERS),
    )
    parameters.metadata["tags"] = ["parameters"]
    cells.append(parameters)

    source_meta = _role(ROLE_SOURCE)
    source_meta["jupyter"] = {"source_hidden": True}
    cells.append(
        _code(
            _render(
                "notebook_source.py.j2",
                variable=SOURCE_VARIABLE,
                literal=python_string_literal(runbook.source_text),
            ),
            "playbook-runbook-source",
            source_meta,
        )
    )
    cells.append(
        _code(
            _render(
                "notebook_setup.py.j2",
                source_variable=SOURCE_VARIABLE,
                sha256=sha256,
                parameter_names=[p.name for p in params],
                parameter_dict="{" + ", ".join(f"{json.dumps(p.name)}: {p.name}" for p in params) + "}",
            ),
            "playbook-setup",
            _role(ROLE_SETUP),
        )
    )
    for node_id in topological_order(runbook):
        node = runbook.node(node_id)
        cells.append(
            _markdown(
                _render("notebook_node_doc.md.j2", node=node),
                _cell_id("doc", node_id),
                _role(ROLE_NODE_DOC, node=node_id),
            )
        )
        cells.append(
            _code(
                node_cell_source(node),
                _cell_id("node", node_id),
                _role(ROLE_NODE, node=node_id, type=str(node.type)),
            )
        )
    cells.append(_code(_render("notebook_summary.py.j2"), "playbook-summary", _role(ROLE_SUMMARY)))

    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(kernelspec or KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata[METADATA_KEY] = {
        "runbook_text": runbook.source_text,
        "runbook_sha256": sha256,
        "title": runbook.meta.title,
        "version": runbook.meta.version,
        "compiled_with": VERSION,
        "source_path": source_path,
    }
    nbformat.validate(nb)
    return nb


def write_notebook(nb: nbformat.NotebookNode, path: str | os.PathLike[str]) -> Path:
    """Validate and write `nb` to `path` atomically (temporary file + rename); return the path."""
    nbformat.validate(nb)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def parameter_names(nb: nbformat.NotebookNode | None = None) -> set[str]:
    """The names a notebook's `parameters` cell assigns (papermill parameters it takes): of `nb`, or of the
    notebooks `compile_runbook` writes. `parallel` and `gate_wait` are read by the setup cell when papermill
    injects them (also into notebooks compiled before they were parameters)."""
    source = _render("notebook_parameters.py.j2", variable_parameters=[], dict_only=[], secrets=[])
    if nb is not None:
        tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        source = "".join(c.source for c in tagged) if tagged else ""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {"parallel", "gate_wait"}
    names = {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign | ast.AnnAssign)
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Name)
    }
    return names | {"parallel", "gate_wait"}  # read by open_run when papermill injects them
