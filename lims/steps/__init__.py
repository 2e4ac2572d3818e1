"""Recorded process steps: what was done, to which material, with what, by whom."""
