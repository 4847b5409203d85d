"""Settings, read from ``LEADSHOP_*`` environment variables and ``.env``.

Every process (CLI, flow, Dask worker) builds its own ``Settings`` from its environment, so a
worker on another machine is configured where it runs; nothing secret travels as a task
parameter, where Prefect would store it. The paid services' keys and URLs (DESIGN.md) join this
class with the assessments that use them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".leadshop")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSHOP_", env_file=".env", extra="ignore")

    home: Path = DEFAULT_HOME
    database_url: str = ""
    prefect_port: int = 4200
    dask_address: str = ""
    dask_workers: int = 2
    dask_threads_per_worker: int = 4
    dask_memory_limit: str = "2GiB"
    dask_dashboard_address: str = ":8787"

    allow_private_networks: bool = False
    chromium_path: str = "/usr/bin/chromium"
    artifacts_dir: Path = DEFAULT_HOME / "artifacts"

    pagespeed_api_key: SecretStr | None = None
    pagespeed_api_url: str = "https://www.googleapis.com/pagespeedonline/v5/runPagespeed"
    lighthouse_path: str = ""  # empty: the project's own node_modules/.bin/lighthouse
    lighthouse_slots: int = 0  # Lighthouse runs at once on this machine; 0: one per CPU core

    places_api_key: SecretStr | None = None
    places_api_url: str = "https://places.googleapis.com/v1"
    semrush_api_key: SecretStr | None = None
    semrush_api_url: str = "https://api.semrush.com"
    semrush_database: str = "us"  # SEMrush's regional database: us, uk, de, ...

    llm_base_url: str = ""  # any OpenAI-compatible server; empty: rule-based insights
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"

    # How much each section counts in a lead's overall score; sections that were skipped or
    # failed are left out and the rest re-weighted, never counted as zero.
    section_weights: dict[str, float] = {
        "pagespeed": 0.25,
        "security": 0.15,
        "gbp": 0.2,
        "semrush": 0.2,
        "visual": 0.2,
    }

    @property
    def resolved_database_url(self) -> str:
        """The default is a SQLite file under ``home`` so a first run needs no server."""
        return self.database_url or f"sqlite:///{(self.home / 'leadshop.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """One Settings per process; tests that change the environment call ``cache_clear``."""
    return Settings()
