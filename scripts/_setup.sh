# Sourced by scripts/demo and scripts/test: one place that makes a fresh machine ready.
# Creates .venv (with uv when it can, pip otherwise), installs nbflow with the
# extras given in NBFLOW_EXTRAS, and makes sure Graphviz's `dot` binary is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NBFLOW_VENV:-$ROOT/.venv}"
EXTRAS="${NBFLOW_EXTRAS:-dev}"
PY="${PYTHON:-python3}"

log() { printf '[nbflow setup] %s\n' "$*" >&2; }

ensure_dot() {
    command -v dot >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Graphviz's dot binary with apt (about 15 s)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
    else
        log "Graphviz's 'dot' binary is missing: install it with 'sudo apt-get install graphviz'" \
            "(or 'brew install graphviz', 'conda install -c conda-forge graphviz'); drawings need it."
    fi
}

ensure_chromium() {
    # The browser test (tests/widgets/test_browser.py) drives JupyterLab in the distribution's
    # Chromium through Playwright; `playwright install` downloads its own browser, which fails
    # on machines without that download, so the test never relies on it.
    command -v chromium >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Chromium with apt for the browser test (about 40 s)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        log "Chromium is missing: install it with 'sudo apt-get install chromium';" \
            "the browser test (pytest -m browser) skips without it."
    fi
}

ensure_venv() {
    # uv installs in seconds where pip takes over a minute; fall back to pip if uv cannot be had.
    if ! command -v uv >/dev/null 2>&1; then
        "$PY" -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 || true
    fi
    if command -v uv >/dev/null 2>&1; then
        [ -x "$VENV/bin/python" ] || uv venv -q --python "$PY" "$VENV"
        # --compile-bytecode: PYTHONDONTWRITEBYTECODE may be set, and without .pyc files every
        # process (each loky worker, each notebook kernel) recompiles its imports.
        uv pip install -q --compile-bytecode --python "$VENV/bin/python" -e "$ROOT[$EXTRAS]"
    else
        [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q -e "$ROOT[$EXTRAS]"
    fi
}

ensure_dot
# Only the test suite needs a browser; scripts/demo does not wait for one.
case ",$EXTRAS," in *,dev,*) ensure_chromium ;; esac
ensure_venv
export PATH="$VENV/bin:$PATH"
