#!/usr/bin/env bash
# The two README commands, set-up included:
#   bash scripts/run.sh main   # the main job: synthetic data -> fine-tune -> evaluate -> save (tiny preset, CPU)
#   bash scripts/run.sh test   # lint + format check + the whole test suite
# Both create (or reuse) the virtualenv .venv and install rszoo with the pinned stack (constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${RSZOO_VENV:-$root/.venv}
python=${PYTHON:-python3}

setup() {
  if [ ! -x "$venv/bin/python" ]; then
    echo "[rszoo] creating virtualenv $venv"
    "$python" -m venv "$venv"
  fi
  # Re-install only when the pinned stack or the package metadata changed.
  stamp="$venv/.rszoo-install-stamp"
  want=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[rszoo] installing the pinned stack into $venv (a few minutes on a fresh machine)"
    "$venv/bin/python" -m pip install -q --upgrade "pip>=24"
    "$venv/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
    echo "$want" > "$stamp"
  fi
  export PATH="$venv/bin:$PATH"
  export MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
}

cmd=${1:-}
shift || true
case "$cmd" in
  main)
    setup
    exec "$venv/bin/rszoo" demo "$@"
    ;;
  test)
    setup
    "$venv/bin/ruff" check rszoo tests benchmarks
    "$venv/bin/ruff" format --check rszoo tests benchmarks
    exec "$venv/bin/python" -m pytest -n 2 --dist loadgroup -q "$@"
    ;;
  setup)
    setup
    ;;
  *)
    echo "usage: bash scripts/run.sh {main|test|setup} [args...]" >&2
    exit 2
    ;;
esac
