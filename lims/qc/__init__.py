"""QC: specifications per product, results with pass/fail, deviations, release, expiry."""
