"""Secret values are masked wherever they travel: plain, shell-quoted, JSON-escaped, nested structures."""

from __future__ import annotations

import json
import shlex

from conftest import FIXTURES

from playbook_nb.app.inputs import load_runbook
from playbook_nb.domain.redact import MASK, Redactor, mask_variables, redactor_for


def test_every_occurrence_is_masked():
    redactor = Redactor(["s3cr3t"])
    assert redactor.redact("a s3cr3t b s3cr3t") == f"a {MASK} b {MASK}"


def test_shell_quoted_and_json_forms_are_masked():
    secret = 'it\'s a "secret"'
    redactor = Redactor([secret])
    command = f"curl -H {shlex.quote(secret)}"
    assert redactor.redact(command) == f"curl -H {MASK}"
    assert redactor.redact(json.dumps({"t": secret})) == json.dumps({"t": MASK})


def test_short_values_are_not_masked():
    redactor = Redactor(["ab", "1", None, ""])
    assert not redactor
    assert redactor.redact("ab 1 exit") == "ab 1 exit"


def test_redact_obj_recurses_and_copies():
    data = {"out": ["token=abc123", ("abc123", 3)], "abc123": {"k": "abc123"}, "n": 5}
    masked = Redactor(["abc123"]).redact_obj(data)
    assert masked == {"out": [f"token={MASK}", (MASK, 3)], MASK: {"k": MASK}, "n": 5}
    assert data["out"][0] == "token=abc123"


def test_mask_variables_and_redactor_for_secret_fixture():
    runbook = load_runbook(FIXTURES / "secret_token.playbook.toml")
    values = {"API_TOKEN": "tok-0123456789", "SERVICE": "billing"}
    assert mask_variables(values, runbook) == {"API_TOKEN": MASK, "SERVICE": "billing"}
    redactor = redactor_for(values, runbook)
    assert (
        redactor.redact("calling billing with token tok-0123456789") == f"calling billing with token {MASK}"
    )
