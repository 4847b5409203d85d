"""Grades and curves shared by the assessments.

Scores are 0-100. Every section and the overall grade share one chart, the Mozilla HTTP
Observatory's (a score rounded down to a multiple of five, read off the chart), so a 50 is a C
wherever a salesperson sees it. Checklist assessments (security, visual, on-page SEO, business
signals) share the score-table machinery below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from leadshop.models import AssessmentResult, Finding, Severity

GRADE_BANDS: tuple[tuple[int, str], ...] = (
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
)


def grade_for(score: float) -> str:
    for floor, grade in GRADE_BANDS:
        if score >= floor:
            return grade
    return "F"


def log_normal_score(value: float, p10: float, median: float) -> float:
    """Lighthouse's scoring curve: 1.0 at 0, 0.9 at ``p10``, 0.5 at ``median``, towards 0 beyond.

    Lower values are better (times, sizes). For "higher is better" inputs, score the inverse.
    """
    if value <= 0:
        return 1.0
    if median <= 0 or p10 <= 0 or p10 >= median:
        raise ValueError("need 0 < p10 < median")
    # Complementary CDF of a log-normal with the given median, shaped so that p10 scores 0.9.
    sigma = (math.log(median) - math.log(p10)) / (math.sqrt(2) * 0.9061938024368232)
    z = (math.log(value) - math.log(median)) / (sigma * math.sqrt(2))
    return max(0.0, min(1.0, 0.5 * math.erfc(z)))


DEFAULT_WEIGHT = 0.2  # a section without a configured weight (a plugin) counts as an average one
IMPACT_POINTS: dict[Severity, int] = {"high": 3, "medium": 2, "low": 1, "info": 0}
FULLY_FIXABLE_POINTS = 12  # e.g. four high-severity findings, each with a fix to sell


def overall(results: Iterable[AssessmentResult], weights: Mapping[str, float]) -> int | None:
    """The weighted mean of the sections that were scored. Skipped or failed sections are left
    out and the others re-weighted, never counted as zero: a site is not worse because an API
    was down."""
    scored = [
        (r.score, weights.get(r.assessment, DEFAULT_WEIGHT))
        for r in results
        if r.status == "completed" and r.score is not None
    ]
    total = sum(weight for _, weight in scored if weight > 0)
    if not total:
        return None
    return round(sum(score * weight for score, weight in scored if weight > 0) / total)


def opportunity(results: Iterable[AssessmentResult], overall_score: int | None) -> int | None:
    """0-100, higher is a better prospect: a weak site (low overall) whose findings are
    high-impact and come with a fix the agency can sell. Half the weakness counts whatever the
    findings; the other half in proportion to the fixable impact, up to FULLY_FIXABLE_POINTS."""
    if overall_score is None:
        return None
    fixable = sum(
        IMPACT_POINTS[finding.severity]
        for result in results
        if result.status == "completed"
        for finding in result.findings
        if finding.recommendation
    )
    share = min(1.0, fixable / FULLY_FIXABLE_POINTS)
    return round((100 - overall_score) * (0.5 + 0.5 * share))


# --- Score tables ------------------------------------------------------------------------------
# The Observatory's shape, shared by every assessment that grades a list of checks: a check looks
# at evidence and returns a result code, never a number; what a code is worth, and how it is
# explained, lives in one table next to it; ``judge_checks`` adds up and words the findings.

SEVERITY_BANDS: tuple[tuple[int, Severity], ...] = ((20, "high"), (10, "medium"), (1, "low"))

Code = TypeVar("Code", bound=StrEnum)
Evidence = TypeVar("Evidence")


@dataclass(frozen=True)
class Score:
    """What a result code is worth: the only place points and wording live."""

    passed: bool
    modifier: int
    description: str
    recommendation: str = ""


@dataclass(frozen=True)
class Outcome(Generic[Code]):
    """A check's verdict: a result code, a line for the report and what it saw."""

    result: Code
    detail: str = ""
    data: Any = None


@dataclass(frozen=True)
class Check(Generic[Evidence, Code]):
    """One graded concern: its key in ``data``, its title in findings, and every code it returns."""

    name: str
    title: str
    check: Callable[[Evidence], Outcome[Code]]
    results: tuple[Code, ...]


def severity_for(modifier: int) -> Severity:
    """Findings are ranked by what the table charges for them, so the two never disagree."""
    for points, severity in SEVERITY_BANDS:
        if -modifier >= points:
            return severity
    return "info"


@dataclass(frozen=True)
class Judgement(Generic[Evidence, Code]):
    """Every check's outcome, read against its table."""

    table: Mapping[Code, Score]
    outcomes: tuple[tuple[Check[Evidence, Code], Outcome[Code]], ...]

    @property
    def failing(self) -> list[tuple[Check[Evidence, Code], Outcome[Code]]]:
        """The failed checks, worst first."""
        failed = [pair for pair in self.outcomes if not self.table[pair[1].result].passed]
        return sorted(failed, key=lambda pair: self.table[pair[1].result].modifier)

    def score(self, base: int = 100) -> int:
        """``base`` plus every modifier, clamped to 0..100."""
        total = base + sum(self.table[outcome.result].modifier for _, outcome in self.outcomes)
        return max(0, min(100, total))

    def findings(self) -> list[Finding]:
        return [
            Finding(
                id=outcome.result.value,
                severity=severity_for(self.table[outcome.result].modifier),
                title=f"{check.title}: {self.table[outcome.result].description}",
                detail=outcome.detail,
                recommendation=self.table[outcome.result].recommendation,
            )
            for check, outcome in self.failing
        ]

    def entries(self) -> dict[str, dict[str, Any]]:
        """Per check, what ``data`` keeps: its result code, pass, points and what it measured."""
        return {
            check.name: {
                "result": outcome.result.value,
                "pass": self.table[outcome.result].passed,
                "score_modifier": self.table[outcome.result].modifier,
                "data": outcome.data,
            }
            for check, outcome in self.outcomes
        }

    def summary(self, opening: str, noun: str = "checks") -> str:
        """``opening``, then how many checks failed and the worst of them, for a salesperson."""
        failing = self.failing
        if not failing:
            return f"{opening}: all {len(self.outcomes)} {noun} pass."
        worst = self.table[failing[0][1].result].description
        return (
            f"{opening}: {len(failing)} of {len(self.outcomes)} {noun} fail, "
            f"most seriously: {worst}"
        )


def judge_checks(
    checks: Iterable[Check[Evidence, Code]], evidence: Evidence, table: Mapping[Code, Score]
) -> Judgement[Evidence, Code]:
    return Judgement(table, tuple((check, check.check(evidence)) for check in checks))
