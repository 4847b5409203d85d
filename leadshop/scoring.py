"""Grades and curves shared by the assessments.

Scores are 0-100. Every section and the overall grade share one chart, the Mozilla HTTP
Observatory's (a score rounded down to a multiple of five, read off the chart), so a 50 is a C
wherever a salesperson sees it.
"""

from __future__ import annotations

import math

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


def overall(scores: list[int]) -> int | None:
    """The mean of the sections that were scored; skipped or failed ones are left out, not zero."""
    return round(sum(scores) / len(scores)) if scores else None
