#!/bin/sh
# Regenerate the example notebooks from the acceptance runbooks (run from anywhere; needs the project's venv).
#   notebooks/regenerate.sh            copy the runbooks, compile them, re-run the executed example
# The executed example records its run in a throw-away index under /tmp/playbook-nb-example (that path shows in
# its summary cell); nothing from your own run index or home directory ends up in the committed files.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
python="${PYTHON:-$repo/.venv/bin/python}"
fixtures="${PLAYBOOK_NB_FIXTURES:-$repo/../shared/fixtures/runbooks}"

cd "$here"
for runbook in "$fixtures"/*.playbook.toml; do
    cp -f "$runbook" . && chmod 644 "$(basename "$runbook")"
    name=$(basename "$runbook")
    "$python" -m playbook_nb compile "$name"   # relative path: the notebook metadata names no local directory
done

example_db=/tmp/playbook-nb-example/runs.db
rm -rf /tmp/playbook-nb-example
"$python" -m playbook_nb run deploy_pipeline.playbook.toml --headless \
    --var ENVIRONMENT=staging --approve approve_deploy --actor example \
    --state-path "$example_db" -o deploy_pipeline.executed.ipynb
