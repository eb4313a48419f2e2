"""Variable values: sources and their priority, conversions, rules, and messages that never leak secrets."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from playbook_nb.app.inputs import load_runbook, parse_var_assignments, resolve_variables
from playbook_nb.domain.errors import VariableError
from playbook_nb.domain.model import Variable
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.domain.variables import check_value

RUNBOOK = """
[variables]
ENVIRONMENT = { required = true, choices = ["dev", "staging", "prod"] }
REGION = { required = true }
APP = { default = "myapp", pattern = "[a-z]+" }
PORT = { default = 8080, type = "int", min = 1, max = 65535 }
RATIO = { default = 0.5, type = "float" }
DRY = { default = false, type = "bool" }
HOSTS = { default = ["a"], type = "list" }
OPTS = { default = {}, type = "dict" }
TOKEN = { secret = true, pattern = "tok-[0-9]+" }

[runbook]
title = "T"

[a]
type = "Command"
command_name = "echo {{ENVIRONMENT}} {{REGION}} {{APP}} {{PORT}} {{RATIO}} {{DRY}} {{HOSTS}} {{OPTS}}"
description = "{{TOKEN}}"
"""


@pytest.fixture
def runbook():
    return parse_runbook(RUNBOOK)


def resolve(runbook, **kw):
    kw.setdefault("environ", {})
    return resolve_variables(runbook, **kw)


BASE = {"ENVIRONMENT": "dev", "REGION": "eu"}


def test_defaults_and_typed_values(runbook):
    values = resolve(runbook, cli_vars=BASE)
    assert values == {
        "ENVIRONMENT": "dev",
        "REGION": "eu",
        "APP": "myapp",
        "PORT": 8080,
        "RATIO": 0.5,
        "DRY": False,
        "HOSTS": ["a"],
        "OPTS": {},
    }
    assert "TOKEN" not in values  # optional, no default: left out


def test_priority_cli_over_file_over_env_over_prompt_over_default(runbook, tmp_path):
    vars_file = tmp_path / "v.toml"
    vars_file.write_text('APP = "fromfile"\nPORT = 1000\nENVIRONMENT = "staging"\n')
    env = {"PB_APP": "fromenv", "PB_PORT": "2000", "PB_RATIO": "0.25", "PB_REGION": "us"}
    values = resolve(
        runbook,
        cli_vars={"ENVIRONMENT": "prod"},
        vars_file=vars_file,
        vars_env_prefix="PB_",
        environ=env,
        interactive=True,
        prompt=lambda var: pytest.fail(f"prompted for {var.name}"),
    )
    assert values["ENVIRONMENT"] == "prod"  # cli beats file
    assert values["APP"] == "fromfile" and values["PORT"] == 1000  # file beats env
    assert values["RATIO"] == 0.25 and values["REGION"] == "us"  # env beats default / prompt


def test_prompt_only_for_missing_required(runbook):
    asked = []

    def prompt(var: Variable) -> str:
        asked.append(var.name)
        return {"ENVIRONMENT": "staging", "REGION": "ap"}[var.name]

    values = resolve(runbook, interactive=True, prompt=prompt)
    assert asked == ["ENVIRONMENT", "REGION"]
    assert values["ENVIRONMENT"] == "staging"


def test_non_interactive_lists_every_missing_required(runbook):
    with pytest.raises(VariableError) as info:
        resolve(runbook, interactive=False)
    assert str(info.value).startswith("missing required variables: ENVIRONMENT, REGION")


def test_allow_missing_for_validate(runbook):
    assert "ENVIRONMENT" not in resolve(runbook, allow_missing=True)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENVIRONMENT", "qa", "variable ENVIRONMENT: 'qa' is not one of dev, staging, prod (from --var)"),
        ("PORT", "http", "variable PORT: 'http' is not an int (from --var)"),
        ("PORT", "70000", "variable PORT: '70000' is above the maximum 65535 (from --var)"),
        ("PORT", "0", "variable PORT: '0' is below the minimum 1 (from --var)"),
        ("DRY", "maybe", "variable DRY: 'maybe' is not a bool (use true/false, yes/no or 1/0) (from --var)"),
        ("APP", "My App", "variable APP: 'My App' does not match pattern '[a-z]+' (from --var)"),
        ("HOSTS", "a,b", "variable HOSTS: 'a,b' is not a list (expected JSON) (from --var)"),
    ],
)
def test_rule_errors_name_variable_value_and_rule(runbook, name, value, message):
    with pytest.raises(VariableError) as info:
        resolve(runbook, cli_vars={**BASE, name: value})
    assert str(info.value) == message


def test_secret_value_never_in_error(runbook):
    with pytest.raises(VariableError) as info:
        resolve(runbook, cli_vars={**BASE, "TOKEN": "hunter2-secret"})
    assert "hunter2" not in str(info.value)
    assert (
        str(info.value) == "variable TOKEN: (secret value) does not match pattern 'tok-[0-9]+' (from --var)"
    )


def test_unknown_cli_variable(runbook):
    with pytest.raises(VariableError, match="--var NOPE: no such variable in the runbook"):
        resolve(runbook, cli_vars={**BASE, "NOPE": "1"})


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_vars_file_formats(runbook, tmp_path, suffix):
    data = {"ENVIRONMENT": "prod", "REGION": "eu", "HOSTS": ["x", "y"], "DRY": True}
    path = tmp_path / f"vars{suffix}"
    if suffix == ".toml":
        path.write_text('ENVIRONMENT = "prod"\nREGION = "eu"\nHOSTS = ["x", "y"]\nDRY = true\n')
    else:
        path.write_text(json.dumps(data))  # JSON is valid YAML too
    values = resolve(runbook, vars_file=path)
    assert (values["ENVIRONMENT"], values["HOSTS"], values["DRY"]) == ("prod", ["x", "y"], True)


def test_vars_file_errors(runbook, tmp_path):
    with pytest.raises(VariableError, match="vars file .*missing.toml: cannot read it"):
        resolve(runbook, vars_file=tmp_path / "missing.toml")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(VariableError, match="bad.json: cannot parse it"):
        resolve(runbook, vars_file=bad)
    other = tmp_path / "v.ini"
    other.write_text("x")
    with pytest.raises(VariableError, match="unknown extension '.ini'"):
        resolve(runbook, vars_file=other)


def test_check_value_converts_choices_of_typed_variables():
    var = Variable(name="N", type="int", choices=[1, 2])
    assert check_value(var, "2") == 2
    with pytest.raises(VariableError, match="'3' is not one of 1, 2"):
        check_value(var, "3")


def test_parse_var_assignments():
    assert parse_var_assignments(["A=1", "B=x=y", "A=2", "C="]) == {"A": "2", "B": "x=y", "C": ""}
    with pytest.raises(VariableError) as info:
        parse_var_assignments(["ENVIRONMENT"])
    assert str(info.value) == "--var 'ENVIRONMENT': expected NAME=VALUE (missing '=')"
    with pytest.raises(VariableError, match="empty name"):
        parse_var_assignments(["=1"])


def test_deploy_fixture_with_seed_values():
    runbook = load_runbook(FIXTURES / "deploy_pipeline.playbook.toml")
    values = resolve(runbook, cli_vars={"ENVIRONMENT": "staging", "HEALTHY": "false"})
    assert values == {"ENVIRONMENT": "staging", "APP_NAME": "myapp", "SKIP_TESTS": False, "HEALTHY": False}
