"""Helpers more than one agent reads: record shapes, text reading, phrasing, working hours."""
