"""Clinics (tenants), patients and donors, users and roles, instruments, reagent lots."""
