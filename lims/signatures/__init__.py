"""Part 11-style electronic signatures: password re-entry, meaning, binding to a record."""
