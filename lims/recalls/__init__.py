"""Lot recalls: the look-forward trace, blocking and do-not-use, the clinics told and their
acknowledgements, the recall report (21 CFR 1271.290)."""
