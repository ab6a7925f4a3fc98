#!/usr/bin/env bash
# Starts the scheduler sidecar and the HTTP API (127.0.0.1:8600 by default) in the background and
# the dashboard in the foreground; Ctrl-C (or the dashboard exiting) stops all three.
set -euo pipefail
PY=${1:-.venv/bin/python}
cd "$(dirname "$0")/.."
"$PY" -m orchestration.scheduler &
SCHED=$!
"$PY" -m api &
API=$!
trap 'kill -TERM "$SCHED" "$API" 2>/dev/null; wait "$SCHED" "$API" 2>/dev/null || true' EXIT INT TERM
"$PY" -m streamlit run app.py --server.headless true --browser.gatherUsageStats false "${@:2}"
