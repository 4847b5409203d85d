"""The product's chart, curves and the weighting of sections into one score and a sales rank."""

from __future__ import annotations

import pytest

from leadshop.models import AssessmentResult, Finding
from leadshop.scoring import (
    FULLY_FIXABLE_POINTS,
    GRADE_BANDS,
    grade_for,
    log_normal_score,
    opportunity,
    overall,
)

WEIGHTS = {"pagespeed": 0.5, "security": 0.25, "gbp": 0.25}


def section(
    name: str, score: int | None, status: str = "completed", **fields: object
) -> AssessmentResult:
    return AssessmentResult.model_validate(
        {"assessment": name, "status": status, "score": score, **fields}
    )


@pytest.mark.parametrize(
    ("score", "grade"), [(100, "A+"), (99, "A"), (64, "C+"), (24, "F"), (0, "F")]
)
def test_grades_follow_the_observatory_chart(score: int, grade: str) -> None:
    assert grade_for(score) == grade
    assert [floor for floor, _ in GRADE_BANDS] == sorted((f for f, _ in GRADE_BANDS), reverse=True)


def test_log_normal_curve_passes_its_control_points() -> None:
    assert log_normal_score(0, 2500, 4000) == 1.0
    assert log_normal_score(2500, 2500, 4000) == pytest.approx(0.9, abs=1e-6)
    assert log_normal_score(4000, 2500, 4000) == pytest.approx(0.5, abs=1e-6)
    assert log_normal_score(40_000, 2500, 4000) < 0.01
    with pytest.raises(ValueError):
        log_normal_score(1, 4000, 2500)


def test_overall_weighs_completed_sections_and_leaves_the_rest_out() -> None:
    results = [
        section("pagespeed", 40),
        section("security", 100),
        section("gbp", None, status="skipped"),
        AssessmentResult.failure("semrush", TimeoutError("slow")),
    ]
    assert overall(results, WEIGHTS) == 60  # (40 * 0.5 + 100 * 0.25) / 0.75
    assert overall(results[2:], WEIGHTS) is None
    assert overall([section("security", 90)], {"security": 0.0}) is None
    assert overall([section("plugin", 10), section("pagespeed", 90)], {"pagespeed": 0.2}) == 50


def test_opportunity_favours_weak_sites_with_fixable_high_impact_findings() -> None:
    fix = Finding(id="x", severity="high", title="x", recommendation="do y")
    no_fix = fix.model_copy(update={"recommendation": ""})
    assert opportunity([], None) is None
    assert opportunity([section("pagespeed", 100)], 100) == 0
    assert opportunity([section("pagespeed", 20)], 20) == 40  # half of the weakness, no findings
    many = [section("pagespeed", 20, findings=[fix] * FULLY_FIXABLE_POINTS)]
    assert opportunity(many, 20) == 80
    assert opportunity([section("pagespeed", 20, findings=[no_fix] * 10)], 20) == 40
    assert opportunity([section("pagespeed", 20, findings=[fix] * 2)], 20) == 60  # 6 of 12 points
