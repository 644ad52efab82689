"""Settings from the environment (prefix ``YIYANG_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIYANG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="where the embedded SQLite file and exports live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty means the embedded SQLite file under data_dir"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Linkage thresholds (log2 likelihood-ratio weights); see docs/linkage.md.
    link_threshold: float = 14.0
    review_threshold: float = 6.0
    import_batch_rows: int = 5000

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'yiyang.db').as_posix()}"


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and point them at psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
