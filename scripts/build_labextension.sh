#!/usr/bin/env bash
# Build the JupyterLab extension (labextension/, TypeScript) into playbook_nb/labextension/ with JupyterLab's
# own toolchain (jlpm + @jupyterlab/builder via `jupyter labextension build`), only when the built assets are
# missing or older than their sources. The built assets are committed, so a clean clone needs no Node.js;
# the wheel ships them as share/jupyter/labextensions/playbook-nb.
#
# Stale or not is decided by a digest of the sources (src/, style/, package.json, yarn.lock, tsconfig.json)
# kept in playbook_nb/labextension/sources.sha256. `--force` rebuilds anyway; `--check` only reports
# (exit 1 when a build is due). Needs the venv (.venv, for jlpm and jupyter) and Node.js >= 18 to build.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO/labextension"
OUT="$REPO/playbook_nb/labextension"
STAMP="$OUT/sources.sha256"
VENV="${VENV:-$REPO/.venv}"

log() { printf '==> %s\n' "$*"; }
die() { printf 'build_labextension.sh: error: %s\n' "$*" >&2; exit 1; }

sources_digest() {
    (cd "$SRC" && find src style package.json yarn.lock tsconfig.json .yarnrc.yml install.json -type f -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

mode="${1:-}"
want="$(sources_digest)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$mode" != --force && "$want" == "$have" && -f "$OUT/package.json" && -f "$OUT/install.json" ]] &&
    compgen -G "$OUT/static/remoteEntry.*.js" >/dev/null; then
    log "labextension: built assets are up to date (sources ${want:0:12})"
    exit 0
fi
if [[ "$mode" == --check ]]; then
    echo "labextension: the built assets in $OUT are missing or stale; run scripts/build_labextension.sh" >&2
    exit 1
fi

command -v node >/dev/null 2>&1 || die "Node.js is needed to rebuild the labextension (apt-get install nodejs)"
major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$major" -ge 18 ]] || die "Node.js >= 18 is needed, found $(node --version)"
[[ -x "$VENV/bin/jlpm" ]] || die "no $VENV/bin/jlpm: run scripts/test.sh or scripts/setup.sh first"

log "labextension: building (sources ${want:0:12}, was ${have:0:12})"
t0=$SECONDS
cd "$SRC"
export PATH="$VENV/bin:$PATH"
# --immutable: the lock file is the truth; node_modules and .yarn/cache are reused when present.
jlpm install --immutable >/dev/null || die "jlpm install failed (run it in labextension/ to see why)"
rm -rf "$OUT/static"
jlpm run build || die "jlpm run build failed"
cp install.json "$OUT/install.json" # how `jupyter labextension list` says it was installed (the build wipes OUT)
echo "$want" >"$STAMP"
log "labextension: built in $((SECONDS - t0))s into $OUT"
