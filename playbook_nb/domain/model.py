"""The runbook model's types: what a `*.playbook.toml` file holds, before any variable is substituted.

Types only. TOML becomes these in `playbook_nb.domain.parsing`; the templated strings they hold are listed by
`playbook_nb.domain.template_fields`; `playbook_nb.domain.validation` checks a whole runbook (graph and
templates) and is what `parse_runbook` / `load_runbook` go through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NodeType(StrEnum):
    MANUAL = "Manual"
    COMMAND = "Command"
    FUNCTION = "Function"
    PYTHON = "Python"
    ANSIBLE = "Ansible"  # an existing Ansible playbook, through ansible-runner (issue 21)


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
    approvers: list[str] | None = None  # who may decide the gate: names and "group:NAME" ([groups] config)
    four_eyes: bool = False  # the one who decides must not be the one who started the run
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
    # issue 21: fleet steps. Command: `targets` (+ transport, batch, max_fail, ssh; `timeout` is per host).
    # targets: a list of host texts (each a template), a template string naming a list, or {file = "..."}.
    targets: Any = None
    transport: str | None = None  # "ssh" (the default with targets)
    batch: int | None = None  # hosts at a time, rolling; domain.fleet.DEFAULT_BATCH when None
    max_fail: int | None = None  # start no new host once this many failed
    ssh: dict[str, Any] = field(default_factory=dict)  # user, port, identity_file, known_hosts, ...
    # Ansible: playbook file, inventory file (or `targets`), limit, extra vars
    playbook: str | None = None
    inventory: str | None = None
    limit: str | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)
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
    def is_fleet(self) -> bool:
        """Runs on many hosts and records a row per host (a Command with targets, or an Ansible node)."""
        return self.targets is not None or self.type is NodeType.ANSIBLE

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
    # variables that reach a credential parameter (auth_token, an Authorization header, ...), found when the
    # runbook is parsed (playbook_nb.domain.credentials): secrets even where the runbook does not say so
    credential_names: frozenset[str] = frozenset()

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    @property
    def secret_names(self) -> set[str]:
        """Variables marked `secret = true`, and those that reach a credential parameter."""
        return {name for name, var in self.variables.items() if var.secret} | self.credential_names
