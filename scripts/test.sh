#!/usr/bin/env bash
# playbook-nb test command (README command 2; CI runs it through .ci/run).
#
# Creates (or reuses) .venv, installs the package with its test extras, makes sure Debian's
# Chromium is present for the browser tests, then runs: ruff check, the import-linter contracts
# (pyproject's [tool.importlinter]), ruff format --check, mypy ([tool.mypy]), pytest.
# Every stage runs even if an earlier one failed; the closing line lists what failed.
# Extra arguments are passed to pytest (e.g. `bash scripts/test.sh -m "not browser"`).
set -euo pipefail

START=$SECONDS
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv"
CHROMIUM="${PLAYBOOK_NB_CHROMIUM:-/usr/bin/chromium}"
# Hard ceiling for the whole pytest run (seconds); a hung test must not eat the CI budget.
PYTEST_MAX_SECONDS="${PYTEST_MAX_SECONDS:-1800}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

log() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'test.sh: error: %s\n' "$*" >&2
    printf 'test.sh: FAILED (setup) after %ss\n' "$((SECONDS - START))" >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        return 1
    fi
}

# --- environment -------------------------------------------------------------------------------
# shellcheck source=scripts/venv.sh
source "$REPO/scripts/venv.sh"
ensure_venv

log "installing playbook-nb with test extras (pip install -e '.[test]', through uv)"
# quiet: silent except for errors (a failed build still shows its output).
venv_install -e '.[test]' || die "pip install -e '.[test]' failed"
# The JupyterLab extension's built assets are committed; this rebuilds them only when their sources changed.
bash "$REPO/scripts/build_labextension.sh" || die "building the JupyterLab extension failed"
link_jupyter_data

if [[ -x "$CHROMIUM" ]]; then
    log "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
    log "chromium missing at $CHROMIUM: installing Debian's chromium"
    command -v apt-get >/dev/null 2>&1 || die "no apt-get; install Chromium and set PLAYBOOK_NB_CHROMIUM"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-liberation >/dev/null || die "apt-get install chromium failed"
    [[ -x "$CHROMIUM" ]] || die "chromium installed but $CHROMIUM is not there"
    log "chromium: $("$CHROMIUM" --version 2>/dev/null || echo installed)"
fi

# The store tests start a private PostgreSQL server (tests/pg_server.py) unless PLAYBOOK_TEST_PG_URL names one.
if [[ -z "${PLAYBOOK_TEST_PG_URL:-}" ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null &&
    ! command -v initdb >/dev/null 2>&1; then
    log "postgresql missing: installing Debian's postgresql"
    command -v apt-get >/dev/null 2>&1 || die "no apt-get; install PostgreSQL or set PLAYBOOK_TEST_PG_URL"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >/dev/null || die "apt-get install postgresql failed"
fi

# The fleet tests start a private OpenSSH server (tests/sshd_server.py) on loopback addresses.
if [[ ! -x "${PLAYBOOK_NB_SSHD:-/usr/sbin/sshd}" ]]; then
    log "openssh-server missing: installing Debian's openssh-server"
    command -v apt-get >/dev/null 2>&1 || die "no apt-get; install openssh-server or set PLAYBOOK_NB_SSHD"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openssh-server openssh-client >/dev/null || die "apt-get install openssh-server failed"
fi

# --- checks ------------------------------------------------------------------------------------
FAILED=()
stage() {
    local name="$1"
    shift
    local t0=$SECONDS rc=0
    log "$name"
    "$@" || rc=$?
    if [[ $rc -eq 0 ]]; then
        printf -- '--- %s: ok (%ss)\n' "$name" "$((SECONDS - t0))"
    else
        printf -- '--- %s: FAILED, exit %s (%ss)\n' "$name" "$rc" "$((SECONDS - t0))"
        FAILED+=("$name")
    fi
}

run_pytest() {
    local args=(-q -rs)  # -rs: every skip says why in the summary
    # Per-test timeouts when pytest-timeout is installed; the overall ceiling applies regardless.
    if "$VENV/bin/python" -c 'import pytest_timeout' 2>/dev/null; then
        args+=(--timeout="${PYTEST_TEST_TIMEOUT:-300}")
    fi
    # Two pytest-xdist workers by default (the browser tests grouped on one, tests/browser/conftest.py):
    # the whole suite in about 8 minutes on two quiet cores instead of 23. PYTEST_WORKERS=1 runs one process.
    local workers="${PYTEST_WORKERS:-2}"
    if [[ $workers != 1 ]] && "$VENV/bin/python" -c 'import xdist' 2>/dev/null; then
        args+=(-n "$workers" --dist loadgroup)
    fi
    local rc=0
    timeout --kill-after=30 "$PYTEST_MAX_SECONDS" "$VENV/bin/python" -m pytest "${args[@]}" "$@" || rc=$?
    case $rc in
        0) return 0 ;;
        5) echo "pytest collected no tests: that is a failure, not a pass" >&2 ;;
        124 | 137) echo "pytest exceeded ${PYTEST_MAX_SECONDS}s and was stopped" >&2 ;;
    esac
    return "$rc"
}

stage "ruff check" "$VENV/bin/ruff" check --no-cache .
stage "import contracts (import-linter)" "$VENV/bin/lint-imports"
stage "ruff format --check" "$VENV/bin/ruff" format --no-cache --check .
stage "mypy (the package's types)" "$VENV/bin/mypy"
stage "pytest" run_pytest "$@"

# --- verdict -----------------------------------------------------------------------------------
echo
if [[ ${#FAILED[@]} -eq 0 ]]; then
    printf 'test.sh: ALL PASSED in %ss\n' "$((SECONDS - START))"
    exit 0
fi
printf 'test.sh: FAILED (%s) in %ss\n' "$(IFS=,; echo "${FAILED[*]}" | sed 's/,/, /g')" "$((SECONDS - START))"
exit 1
