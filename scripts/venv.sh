# Sourced by setup.sh and test.sh: make sure $VENV holds a Python >= 3.11 virtual environment.
# The caller defines VENV, log and die.

has_python_311() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }

# A Python >= 3.11 to build the venv with: python3.11 first, then python3.
find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && has_python_311 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && has_python_311 "$VENV/bin/python"; then
        log "reusing $VENV ($("$VENV/bin/python" --version))"
        return 0
    fi
    local py
    py="$(find_python)" || die "Python 3.11 or newer is needed (python3.11 or python3 on PATH)"
    "$py" -c 'import ensurepip' 2>/dev/null ||
        die "$py has no venv/ensurepip support; on Debian/Ubuntu: apt-get install python3-venv"
    [[ -e "$VENV" ]] && { log "removing broken $VENV"; rm -rf "$VENV"; }
    log "creating $VENV with $py ($("$py" --version))"
    "$py" -m venv "$VENV" || die "could not create $VENV"
}

# `venv_install ARGS...`: pip install ARGS into $VENV, through uv (from PyPI) when it can be had: pip fetches and
# installs the ~190 packages of '.[test]' one at a time (about 140 s on a fresh two-core machine), uv resolves
# the same versions and does it in parallel (about 35 s, bytecode compiled as pip does). pip is the fallback.
venv_install() {
    if [[ -x "$VENV/bin/uv" ]] || "$VENV/bin/python" -m pip install -qq uv 2>/dev/null; then
        "$VENV/bin/uv" pip install --quiet --compile-bytecode --python "$VENV/bin/python" "$@" && return 0
        log "uv could not install $*; trying pip"
    fi
    "$VENV/bin/python" -m pip install -qq "$@"
}

# An editable install (pip install -e) installs none of the wheel's data files: link the server extension's
# config and the built JupyterLab extension into the venv where the wheel puts them. The caller defines REPO.
link_jupyter_data() {
    local etc="$VENV/etc/jupyter/jupyter_server_config.d" lab="$VENV/share/jupyter/labextensions"
    mkdir -p "$etc" "$lab"
    ln -sfn "$REPO/jupyter-config/jupyter_server_config.d/playbook_nb.json" "$etc/playbook_nb.json"
    if [[ -f "$REPO/playbook_nb/labextension/package.json" ]]; then
        [[ -d "$lab/playbook-nb" && ! -L "$lab/playbook-nb" ]] && rm -rf "$lab/playbook-nb"
        ln -sfn "$REPO/playbook_nb/labextension" "$lab/playbook-nb"
    fi
}
