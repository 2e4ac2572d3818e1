"""The dispatch gate: every check that must pass before a dose leaves the lab."""
