#!/usr/bin/env bash
# Starts the scheduler sidecar in the background and the dashboard in the foreground;
# Ctrl-C (or the dashboard exiting) stops both.
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
"$PY" -m agents.scheduler &
SCHED=$!
trap 'kill -TERM "$SCHED" 2>/dev/null; wait "$SCHED" 2>/dev/null || true' EXIT INT TERM
"$PY" -m streamlit run app.py --server.headless true --browser.gatherUsageStats false "${@:2}"
