"""Chain of custody and audit ledger: append-only, hash-chained events for every write."""
