"""Assessments only the tests register (as ``module:attribute``), to stage partial leads."""

from __future__ import annotations

from leadshop.models import AssessmentResult, LeadRecord
from tasks.registry import assessment_task


@assessment_task("echo")
async def echo_task(lead: LeadRecord) -> AssessmentResult:
    """Always completes: the section that must survive when another one fails."""
    return AssessmentResult(
        assessment="echo",
        status="completed",
        source="rules",
        score=80,
        grade="B-",
        summary=f"echoed {lead.name}",
        data={"website": lead.website},
    )
