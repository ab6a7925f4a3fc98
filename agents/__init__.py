"""Reasoning layer: agents that read a prepared, typed context and return a typed decision.

Nothing in this package except `runner.py`, `scheduler.py` and the CLI touches the database:
those are the glue that builds contexts with crm_core and hands decisions to oversight.
"""
