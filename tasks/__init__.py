"""Prefect tasks: one module per assessment (collect + judge + one thin task), and the store."""
