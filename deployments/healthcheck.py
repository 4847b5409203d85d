"""Health check for docker-compose.yml: exit 0 when URL answers 200 within the timeout, else 1.

Standard library only (the image has no curl): ``python deployments/healthcheck.py URL``.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def healthy(url: str, timeout: float = TIMEOUT_SECONDS) -> bool:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (checked above)
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} URL", file=sys.stderr)
        return 2
    return 0 if healthy(argv[1]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
