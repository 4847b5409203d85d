"""The demo businesses as tests meet them (a pytest plugin): served on loopback, their private
CA trusted and private networks allowed, exactly as ``make demo`` sets things up.

Module-scoped, because starting the sites and their CA costs about a second and the environment
they need (``LEADSHOP_ALLOW_PRIVATE_NETWORKS``) must not leak into the SSRF tests elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from leadshop.config import get_settings
from leadshop.demo.sites import DemoSites
from leadshop.net import trust_context


@contextmanager
def demo_environment(folder: Path) -> Iterator[DemoSites]:
    with DemoSites(folder / "ca") as sites, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(sites.ca.trust_bundle))
        patch.setenv("LEADSHOP_ALLOW_PRIVATE_NETWORKS", "true")
        get_settings.cache_clear()
        trust_context.cache_clear()
        try:
            yield sites
        finally:
            get_settings.cache_clear()
            trust_context.cache_clear()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSites]:
    with demo_environment(tmp_path_factory.mktemp("demo")) as sites:
        yield sites
