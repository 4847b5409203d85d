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

from leadshop.models import AssessmentResult, LeadRecord

RETRIES = 3
RETRY_DELAYS: list[float] = [1, 2, 4]
RETRY_JITTER = 0.2  # each wait lands within +-20 % of its nominal value
TIMEOUT_SECONDS = 90
# An assessment that first waits for a machine-wide slot (Lighthouse) bounds its own run and
# gets this long in all, so a queue of leads is not mistaken for a hang and retried.
QUEUED_TIMEOUT_SECONDS = 600

P = ParamSpec("P")
AssessmentTask = Task[[LeadRecord], Awaitable[AssessmentResult]]

# name -> "module:attribute" of its task, imported lazily so a worker loads only what runs.
ASSESSMENTS: dict[str, str] = {
    "security": "tasks.security:security_task",
    "pagespeed": "tasks.pagespeed:pagespeed_task",
    "visual": "tasks.visual:visual_task",
}


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


def resolve(name: str) -> AssessmentTask:
    """A registered name, or ``module:attribute`` for an assessment shipped elsewhere (plugins)."""
    spec = ASSESSMENTS.get(name, name)
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        known = ", ".join(sorted(ASSESSMENTS))
        raise ValueError(f"unknown assessment {name!r}; known: {known}, or give module:attribute")
    found = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(found, Task):
        raise TypeError(f"{spec} is not a Prefect task")
    return found
