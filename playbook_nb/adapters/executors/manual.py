"""Manual nodes: a gate produces a request for a decision. Nothing here waits; a face shows the request
(buttons in the notebook, a prompt in the terminal, parameters or a policy when headless) and the decision
goes to the engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from playbook_nb.domain.model import DEFAULT_MANUAL_PROMPT, Node


@dataclass(frozen=True)
class GateRequest:
    node_id: str
    prompt: str  # the question to answer (the node's rendered `prompt_after`)
    description: str = ""
    label: str = ""  # the node's name, or its id
    prompt_before: str | None = None  # instructions to read before answering (rendered `prompt_before`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate_request(
    node: Node, rendered_prompt_before: str | None, rendered_prompt_after: str | None
) -> GateRequest:
    """The decision request for Manual `node`, from its prompts already rendered by the templating."""
    return GateRequest(
        node_id=node.id,
        prompt=(rendered_prompt_after or "").strip() or DEFAULT_MANUAL_PROMPT,
        description=node.description or "",
        label=node.label,
        prompt_before=(rendered_prompt_before or "").strip() or None,
    )
