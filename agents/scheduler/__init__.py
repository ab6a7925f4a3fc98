"""The scheduler sidecar: `python -m agents.scheduler [--once] [--workers N]`."""
