"""Prefect flows: ``assess_leads`` (a batch) and, later, ``reassess_stale`` (scheduled)."""
