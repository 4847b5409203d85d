"""Exceptions, with whether trying again could help.

The hierarchy::

    LeadshopError
    ├── ConfigurationError        a setting is missing or wrong                      never retried
    └── FetchError                fetching an untrusted URL went wrong (``url`` set)
        ├── InvalidURL            not an http(s) URL with a host                     never retried
        ├── BlockedAddress        resolves to a private/loopback/metadata address    never retried
        ├── UnresolvableHost      the name does not resolve                          never retried
        ├── TooManyRedirects      more hops than allowed                             never retried
        ├── ResponseTooLarge      body (after decompression) over the cap            never retried
        ├── TLSError              certificate invalid or handshake refused           never retried
        ├── FetchTimeout          the whole fetch took longer than allowed           retried
        ├── ConnectionFailed      refused, reset, closed mid-response                retried
        └── HTTPStatusError       the site answered with an error status          429, 5xx retried

``retryable`` is read by the Prefect tasks' retry condition: only transient failures are retried,
so a refused private address or a 404 costs one attempt, not four.
"""

from __future__ import annotations


class LeadshopError(Exception):
    retryable: bool = False


class ConfigurationError(LeadshopError):
    pass


class FetchError(LeadshopError):
    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class InvalidURL(FetchError):
    pass


class BlockedAddress(FetchError):
    pass


class UnresolvableHost(FetchError):
    pass


class TooManyRedirects(FetchError):
    pass


class ResponseTooLarge(FetchError):
    pass


class TLSError(FetchError):
    pass


class FetchTimeout(FetchError):
    retryable = True


class ConnectionFailed(FetchError):
    retryable = True


class HTTPStatusError(FetchError):
    def __init__(self, message: str, url: str = "", status_code: int = 0) -> None:
        super().__init__(message, url)
        self.status_code = status_code
        self.retryable = status_code == 429 or status_code >= 500
