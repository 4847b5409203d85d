"""The result envelope every assessment returns, and the lead record it is about.

One envelope shape for all six assessments lets the store, the reports and the ranked list treat
sections alike; what differs lives in ``data``, documented per assessment.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

AssessmentName = str  # "pagespeed" | "security" | "gbp" | "semrush" | "visual" | "llm", or a plugin
Status = Literal["completed", "failed", "skipped"]
Severity = Literal["high", "medium", "low", "info"]
Source = Literal[
    "psi",
    "lighthouse",
    "observatory",
    "places",
    "website",
    "semrush",
    "onpage",
    "playwright",
    "llm",
    "rules",
]


class Finding(BaseModel):
    id: str
    severity: Severity
    title: str
    detail: str = ""
    recommendation: str = ""


class ErrorInfo(BaseModel):
    type: str
    message: str
    retryable: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        return cls(
            type=type(exc).__name__,
            message=str(exc) or type(exc).__name__,
            retryable=bool(getattr(exc, "retryable", False)),
        )


class AssessmentResult(BaseModel):
    assessment: AssessmentName
    status: Status
    source: Source | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    grade: str | None = None
    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    duration_ms: int = 0
    algorithm_version: str = ""

    @classmethod
    def failure(
        cls, assessment: AssessmentName, exc: BaseException, duration_ms: int = 0
    ) -> AssessmentResult:
        """The envelope for an assessment that gave up: the error is kept, never the lead lost."""
        error = ErrorInfo.from_exception(exc)
        return cls(
            assessment=assessment,
            status="failed",
            summary=f"The {assessment} assessment failed: {error.message}",
            error=error,
            duration_ms=duration_ms,
        )


Priority = Literal["hot", "warm", "cold"]


class TopIssue(BaseModel):
    title: str = Field(max_length=120)
    evidence: str = Field(max_length=600)  # drawn from the results, never invented
    business_impact: str = Field(max_length=400)
    fix: str = Field(max_length=400)


class OutreachEmail(BaseModel):
    subject: str = Field(max_length=150)
    body: str = Field(max_length=3000)


class Insights(BaseModel):
    """What the ``llm`` assessment hands a salesperson, from a model or from rules: the same
    shape either way, stored as ``data.insights`` of its envelope and read by the reports."""

    summary: str = Field(max_length=1200)
    top_issues: list[TopIssue] = Field(default_factory=list, max_length=5)
    recommended_services: list[str] = Field(default_factory=list, max_length=8)
    outreach_email: OutreachEmail
    priority: Priority


class LeadRecord(BaseModel):
    """What an assessment needs to know about a lead: a plain value, cheap to ship to a worker."""

    id: int
    name: str
    website: str
    phone: str | None = None
    address: str | None = None
