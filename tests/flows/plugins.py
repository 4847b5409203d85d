"""Assessments only the tests register (as ``module:attribute``), to stage partial leads."""

from __future__ import annotations

import asyncio

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


@assessment_task("slow")
async def slow_task(lead: LeadRecord) -> AssessmentResult:
    """Takes long enough for a test to watch the lead's row while it is in progress."""
    await asyncio.sleep(3)
    return AssessmentResult(assessment="slow", status="completed", source="rules", score=50)
