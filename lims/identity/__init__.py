"""ISBT 128-style identifiers: material ids with check characters, chain-of-identity ids."""
