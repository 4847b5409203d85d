"""What every score-table assessment's tests assert alike (``leadshop.scoring``'s machinery):
the table and the result codes match both ways, the wording and points follow the rules, and a
case made to produce one result code changes only its own check in the envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from leadshop.models import AssessmentResult
from leadshop.scoring import Check, Score, grade_for, severity_for

AnyCheck = Check[Any, Any]


def owner(checks: Sequence[AnyCheck], result: StrEnum) -> AnyCheck:
    """The one check that can return ``result``."""
    (check,) = (check for check in checks if result in check.results)
    return check


def assert_codes_match(
    table: Mapping[Any, Score],
    codes: Iterable[StrEnum],
    checks: Sequence[AnyCheck],
    cases: Mapping[Any, Any],
) -> None:
    """Every code has a row, a check that returns it and a test case; nothing else does."""
    codes = set(codes)
    assert set(table) == codes
    owned = [result for check in checks for result in check.results]
    assert len(owned) == len(set(owned))  # no code belongs to two checks
    assert set(owned) == codes
    assert set(cases) == codes
    assert len({check.name for check in checks}) == len(checks)


def assert_wording_and_points(table: Mapping[Any, Score]) -> None:
    """Descriptions are sentences; a pass costs nothing; a failure costs points and says what to
    do about it."""
    for result, score in table.items():
        assert score.description.endswith("."), result
        if score.passed:
            assert score.modifier == 0, result
        else:
            assert score.modifier < 0 and score.recommendation, result


def assert_only_its_check_changes(
    result: StrEnum,
    case: Any,
    checks: Sequence[AnyCheck],
    table: Mapping[Any, Score],
    judge: Callable[[Any], AssessmentResult],
    base: int = 100,
) -> None:
    """``case`` (a passing case with one thing changed) yields ``result`` from its check, and
    the envelope shows exactly that: its points, its entry in ``data``, its finding or none."""
    check = owner(checks, result)
    assert check.check(case).result is result
    envelope = judge(case)
    score = table[result]
    assert envelope.score == base + score.modifier
    assert envelope.grade == grade_for(envelope.score)
    assert envelope.data["checks"][check.name]["result"] == result.value
    findings = {finding.id: finding for finding in envelope.findings}
    if score.passed:
        assert not findings
        return
    (finding,) = findings.values()
    assert finding.id == result.value
    assert finding.severity == severity_for(score.modifier)
    assert finding.recommendation == score.recommendation
    assert finding.title == f"{check.title}: {score.description}"
