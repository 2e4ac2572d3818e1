"""Domain core of the LIMS: models, units, rules and services.

Imports neither fastapi nor prefect: the API, the web pages, the CLI and the Prefect flows
all call these services, so a rule lives in one place.
"""
