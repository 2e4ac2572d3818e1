"""Routers per audience: auth, clinic, lab, qa, audit, admin."""
