#!/usr/bin/env bash
# playbook-nb setup (README command 1).
#
# Creates (or reuses) .venv in the repository with Python >= 3.11, installs the package
# editable, then runs the example runbook headless and prints where its run record went.
# Safe to run again: an existing, working .venv is reused.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '==> %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/venv.sh
source "$REPO/scripts/venv.sh"

ensure_venv
log "installing playbook-nb (editable) into .venv"
# quiet: silent except for errors (a failed build still shows its output).
venv_install -e '.[lab]' || die "pip install -e '.[lab]' failed"
# The JupyterLab extension's built assets are committed; this rebuilds them only when their sources changed.
bash "$REPO/scripts/build_labextension.sh" || die "building the JupyterLab extension failed"
link_jupyter_data

log "running notebooks/deploy_pipeline.playbook.toml headless (ENVIRONMENT=staging, gates: approve-all)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
COLUMNS="${COLUMNS:-200}" "$VENV/bin/playbook-nb" run notebooks/deploy_pipeline.playbook.toml --headless \
    --var ENVIRONMENT=staging --gate-policy approve-all 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e

record="$(sed -n 's/^.*record: *//p' "$out" | tail -n 1)"
echo
if [[ -n "$record" ]]; then
    log "run record: $record"
else
    log "run record: (the run printed no 'record: <path>' line)"
fi
if [[ $status -ne 0 ]]; then
    die "playbook-nb run exited with status $status (0 OK, 1 NOK, 2 invalid, 3 ABORTED)"
fi
log "setup done; activate with: source .venv/bin/activate"
