"""The graph's PNG (the picture an untrusted executed notebook shows): sharp at twice the size for a graph of
ordinary size, at its own size for a large one, shown at the layout's width either way (issue 18.3)."""

from __future__ import annotations

import base64

import pytest

from playbook_nb.adapters.export.dag_png import MAX_PIXELS
from playbook_nb.adapters.export.dag_render import layout
from playbook_nb.adapters.notebook.record import dag_bundle
from playbook_nb.domain.validation import parse_runbook


def chain(n: int):
    text = '[runbook]\ntitle = "chain"\n\n' + "".join(
        f'[step_{i:03d}]\ntype = "Command"\ncommand_name = "true"\n\n' for i in range(n)
    )
    return parse_runbook(text, path="chain.playbook.toml")


@pytest.mark.parametrize(("nodes", "scale"), [(10, 2), (300, 1)], ids=["10-nodes", "300-nodes"])
def test_png_size_and_shown_width(nodes, scale):
    runbook = chain(nodes)
    data, metadata = dag_bundle(runbook, dict.fromkeys(runbook.nodes, "OK"))
    png = base64.b64decode(data["image/png"])
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    _, layout_width, layout_height, _ = layout(runbook)
    assert (width, height) == (int(layout_width * scale), int(layout_height * scale))
    assert metadata["image/png"]["width"] == int(layout_width)  # shown at the layout's size either way
    # twice the size unless that passes the pixel budget
    assert (layout_width * layout_height * 4 > MAX_PIXELS) == (scale == 1)
