"""Materials: every physical thing the lab holds, its state, quantity, lineage and place."""
