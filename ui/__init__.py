"""Shared layout for the dashboard pages: formatting, cached reads and writes, small widgets.

No business rules live here: pages and this package lay out what `crm_core.services` returns.
"""
