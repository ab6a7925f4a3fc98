"""Orchestration: runs the reasoning wing (agents/) against the store (crm_core/).

The runner, the scheduler sidecar, the back-tests and the `python -m orchestration` CLI live
here. Nothing in agents/ or crm_core/ imports this package: it sits on top of both.
"""
