"""The assessments that run per lead, and the task options they all share.

The retry policy lives here, on one decorator, so every assessment retries the same way
(PRP-002: 3 retries after 1 s, 2 s, 4 s) and only when trying again can help.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from leadshop.models import AssessmentResult

RETRIES = 3
RETRY_DELAYS: list[float] = [1, 2, 4]
RETRY_JITTER = 0.2  # each wait lands within +-20 % of its nominal value
TIMEOUT_SECONDS = 90
# An assessment that first waits for a machine-wide slot (Lighthouse) bounds its own run and
# gets this long in all, so a queue of leads is not mistaken for a hang and retried.
QUEUED_TIMEOUT_SECONDS = 600

P = ParamSpec("P")

# name -> "module:attribute" of its task, imported lazily so a worker loads only what runs.
# These run side by side per lead, each given the lead only.
ASSESSMENTS: dict[str, str] = {
    "pagespeed": "tasks.pagespeed:pagespeed_task",
    "security": "tasks.security:security_task",
    "gbp": "tasks.gbp:gbp_task",
    "semrush": "tasks.semrush:semrush_task",
    "visual": "tasks.visual:visual_task",
}
# These run once the others are done and are given their envelopes too: (lead, results).
FOLLOW_UPS: dict[str, str] = {"llm": "tasks.llm:llm_task"}
DEFAULT: list[str] = [*ASSESSMENTS, *FOLLOW_UPS]


def is_transient(exc: BaseException | None) -> bool:
    """Connection errors, timeouts, 429 and 5xx are worth another try; nothing else is."""
    if exc is None:
        return False
    if isinstance(exc, TimeoutError):
        return True
    return bool(getattr(exc, "retryable", False))


def retry_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition: the engine hands over the raised exception as ``state.data``."""
    return is_transient(state.data if isinstance(state.data, BaseException) else None)


def assessment_task(
    name: str, timeout_seconds: float = TIMEOUT_SECONDS
) -> Callable[[Callable[P, Awaitable[AssessmentResult]]], Task[P, Awaitable[AssessmentResult]]]:
    """Wrap an assessment's ``async (lead, ...) -> envelope`` function as its Prefect task."""

    def wrap(fn: Callable[P, Awaitable[AssessmentResult]]) -> Task[P, Awaitable[AssessmentResult]]:
        return task(
            name=name,
            task_run_name=f"{name}-{{lead.id}}",
            retries=RETRIES,
            retry_delay_seconds=RETRY_DELAYS,
            retry_jitter_factor=RETRY_JITTER,
            retry_condition_fn=retry_transient,
            timeout_seconds=timeout_seconds,
            cache_policy=NO_CACHE,
            persist_result=False,
        )(fn)

    return wrap


def resolve(name: str) -> Task[..., Awaitable[AssessmentResult]]:
    """A registered name, or ``module:attribute`` for an assessment shipped elsewhere (plugins)."""
    spec = ASSESSMENTS.get(name) or FOLLOW_UPS.get(name) or name
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        known = ", ".join(DEFAULT)
        raise ValueError(f"unknown assessment {name!r}; known: {known}, or give module:attribute")
    found = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(found, Task):
        raise TypeError(f"{spec} is not a Prefect task")
    return found
