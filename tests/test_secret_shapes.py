"""Secrets nobody declared (issue 19.7): well-known shapes a command prints (cloud keys, tokens, private keys,
detect-secrets' pattern plugins) are masked in the record and reported by `scan`; ordinary output (hashes,
uuids, words) is left alone."""

from __future__ import annotations

import json

import pytest
from conftest import db_rows, run_cli, write_runbook

from playbook_nb.domain.redact import MASK, Redactor

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
SLACK_TOKEN = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE_KEY = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2\nAbCdEf==\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    "text, kept",
    [
        (f"key {AWS_KEY} done", ["key ", " done"]),
        (f"export GITHUB_TOKEN={GITHUB_TOKEN}", ["export GITHUB_TOKEN="]),
        (f"slack {SLACK_TOKEN}", ["slack "]),
        (f"stripe {STRIPE_KEY}", ["stripe "]),
        (f"before\n{PEM}\nafter", ["before\n", "\nafter"]),
        ("clone https://deploy:hunter2hunter2@git.example.com/repo", ["https://deploy:", "@git.example.com"]),
    ],
)
def test_well_known_shapes_are_masked(text, kept):
    masked = Redactor([], shapes=True).redact(text)
    assert MASK in masked
    for part in kept:
        assert part in masked
    for secret in (AWS_KEY, GITHUB_TOKEN, SLACK_TOKEN, STRIPE_KEY, "MIIEpAIBAAKCAQEA", "hunter2hunter2"):
        assert secret not in masked


def test_ordinary_output_is_left_alone():
    text = (
        "sha256 09432af134c2b3933aef40a29fe29cffe4370d233f4045831bb5904dd6fbf062\n"
        "run 7f1c2a9e-4b1d-4c8e-9a57-2f7d3c1b0e64 DEPLOYED myapp to staging in 12.3s\n"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n"
        "https://example.com/path?query=1 user@example.com"
    )
    assert Redactor([], shapes=True).redact(text) == text
    # a PNG in a notebook's output: base64 in which a key's shape turns up by chance
    blob = "iVBORw0KGgo" + "QUJDRE" * 40 + "AC" + "0123456789abcdefghijklmnopqrstuv" + "RUZHSE" * 40
    assert Redactor([], shapes=True).redact(blob) == blob
    assert MASK in Redactor([], shapes=True).redact(f"sid AC{'0123456789abcdefghijklmnopqrstuv'}\n")
    assert Redactor([], shapes=False).redact(f"{AWS_KEY}") == AWS_KEY  # only where asked for


def test_a_printed_cloud_key_is_masked_in_the_record_and_scan_reports_a_planted_one(tmp_path):
    book = write_runbook(
        tmp_path,
        "leaky",
        "Leaky command",
        # the runbook text holds no key: the command makes them (as a cloud CLI prints one)
        f'[leak]\ntype = "Command"\ncommand_name = "echo aws AKIA$(echo {AWS_KEY[4:]}); '
        f'echo gh ghp_$(echo {GITHUB_TOKEN[4:]}) >&2"\n',
    )
    db = tmp_path / "state" / "runs.db"
    result = run_cli("run", str(book), "--state-path", str(db))
    assert result.returncode == 0, result.stderr
    assert AWS_KEY not in result.stdout + result.stderr and GITHUB_TOKEN not in result.stdout + result.stderr
    (attempt,) = db_rows(db, "SELECT stdout, stderr FROM attempts")
    assert attempt["stdout"].strip() == f"aws {MASK}" and attempt["stderr"].strip() == f"gh {MASK}"

    clean = run_cli("scan", str(tmp_path / "state"), "--json")  # no value named: the shapes alone
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert json.loads(clean.stdout)["clean"] is True

    (tmp_path / "state" / "debug.log").write_text(f"ok\nexport AWS_ACCESS_KEY_ID={AWS_KEY}\n")
    found = run_cli("scan", str(tmp_path / "state"))
    assert found.returncode == 1
    assert "debug.log: line 2" in found.stdout and AWS_KEY not in found.stdout
