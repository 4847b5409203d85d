"""Plumbing shared by the clients of the paid services (PageSpeed Insights, Places, SEMrush, an
OpenAI-compatible LLM).

These are trusted endpoints, not lead websites: a lead's URL or name only travels as a parameter,
so they are reached with a plain httpx client (TLS verified against ``trust_context``), never
through ``SafeClient``, which would refuse the loopback stand-ins tests point them at. What every
client needs alike lives here: one error type whose ``retryable`` follows the status (no answer,
429 and 5xx are worth another try), keys kept out of every message, and Google's error envelope.
Each service's client stays a small class in its assessment's module, built from settings, so a
test swaps the endpoint and never the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from leadshop.errors import LeadshopError
from leadshop.net import trust_context

MAX_MESSAGE_CHARS = 300  # of a service's own words kept in an error


class ServiceError(LeadshopError):
    """A paid service failed or refused a request.

    ``status_code`` is None when it gave no answer at all (timeout, connection lost). Subclasses
    name the service; a caller that knows better (an "ERROR 50" that means "no data") overrides
    ``retryable`` through the argument.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        status: str = "",
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.status = status
        self.retryable = (
            retryable
            if retryable is not None
            else status_code is None or status_code == 429 or status_code >= 500
        )


def redact(text: str, *secrets: SecretStr | None) -> str:
    """``text`` without any of ``secrets``, cut to ``MAX_MESSAGE_CHARS``: services may echo a
    request (and its key) back in an error, and errors end up in the database and the UI."""
    for secret in secrets:
        value = secret.get_secret_value() if secret is not None else ""
        if value:
            text = text.replace(value, "***")
    return text[:MAX_MESSAGE_CHARS]


class KeyTransport(httpx.AsyncBaseTransport):
    """Adds ``key=`` to the URL on its way to the socket only. httpx logs the request and
    attaches it to its errors one layer up, where the URL still has no key."""

    def __init__(self, inner: httpx.AsyncBaseTransport, key: SecretStr) -> None:
        self._inner = inner
        self._key = key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        keyed = httpx.Request(
            request.method,
            request.url.copy_add_param("key", self._key.get_secret_value()),
            headers=request.headers,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(keyed)

    async def aclose(self) -> None:
        await self._inner.aclose()


def api_client(timeout: httpx.Timeout, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for a trusted API: TLS verified the product's way, no redirects followed
    (an API that redirects is misconfigured, and a redirect could carry a header-borne key)."""
    kwargs.setdefault("transport", httpx.AsyncHTTPTransport(verify=trust_context()))
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, **kwargs)


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    service: str,
    error: type[ServiceError],
    *secrets: SecretStr | None,
) -> httpx.Response:
    """Send ``request``; no answer becomes a retryable ``error`` that names ``service``."""
    try:
        return await client.send(request)
    except httpx.TimeoutException as exc:
        raise error(f"{service} did not answer in time ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        message = redact(f"{type(exc).__name__}: {exc}", *secrets)
        raise error(f"{service} could not be reached: {message}") from exc


@dataclass(frozen=True)
class GoogleError:
    """Google APIs' error envelope: ``{"error": {"code", "message", "status", "errors":
    [{"reason"}]}}``; ``status`` is the canonical code (``INVALID_ARGUMENT``,
    ``PERMISSION_DENIED``, ``RESOURCE_EXHAUSTED``, ...)."""

    code: int
    status: str
    message: str
    reasons: frozenset[str]


def google_error(response: httpx.Response) -> GoogleError | None:
    """The envelope in ``response``, or None when the body is not one (a proxy's HTML page)."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    # Older APIs (PSI) list reasons in ``errors``; newer ones (Places) as ``google.rpc.ErrorInfo``
    # entries of ``details``.
    details = [
        item
        for key in ("errors", "details")
        if isinstance(error.get(key), list)
        for item in error[key]
        if isinstance(item, dict)
    ]
    return GoogleError(
        code=int(error.get("code") or response.status_code),
        status=str(error.get("status") or ""),
        message=str(error.get("message") or ""),
        reasons=frozenset(str(item["reason"]) for item in details if "reason" in item),
    )
