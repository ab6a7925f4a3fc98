"""The scheduler sidecar: `python -m orchestration.scheduler [--once] [--workers N]`."""
