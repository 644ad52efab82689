"""Settings from the environment (prefix ``YIYANG_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIYANG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="where the embedded SQLite file and exports live"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; empty means the embedded SQLite file under data_dir"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    # Linkage thresholds (log2 likelihood-ratio weights), pitched for a registry of ~400,000;
    # shift both by log2(N / 400,000) for a registry of N. See docs/linkage.md.
    link_threshold: float = 18.0
    review_threshold: float = 15.0
    import_batch_rows: int = 20_000
    tier_rules_file: Path | None = None  # TOML/JSON changing the tier rules; see docs/tiers.md
    service_catalogue_file: Path | None = None  # TOML/JSON changing prices and subsidies; docs/orders.md
    # An order still offered or unassigned this long after its requested time is missed (逾期未接单)
    # rather than offered again; docs/orders.md. At least 5: an order may be placed 5 minutes late.
    order_missed_after_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60)
    # Access, see docs/access.md. "production" requires both keys; so does any database other than
    # the embedded SQLite file, which otherwise gets development keys generated under data_dir.
    environment: str = "development"
    field_keys: SecretStr | None = None  # YIYANG_FIELD_KEYS="kid:base64key,kid:base64key" (first is current)
    blind_index_key: SecretStr | None = None  # YIYANG_BLIND_INDEX_KEY=base64 of >= 32 random bytes
    # While blind indexes are re-keyed (`yiyang keys rotate`), the key they were made with: lookups
    # try both, writes use the new one. Remove it once the rotation has finished.
    blind_index_key_previous: SecretStr | None = None
    token_ttl_hours: int = 168
    session_ttl_hours: int = 12
    sign_in_window_seconds: int = 900
    sign_in_max_failures_per_account: int = 5
    sign_in_max_failures_per_client: int = 20
    # Scope and consent, see docs/access.md: how long a break-the-glass opening lasts, and which
    # (recipient class:category:purpose) sharings are implied where a resident recorded no decision.
    break_glass_hours: float = 4.0
    consent_implied: str | None = None  # "health:clinical:care,..." (docs/access.md); None: defaults
    # On PostgreSQL a GET's commit (which holds only the audit rows of its reads) does not wait for
    # the WAL flush; a server crash can lose the read audits of the last moment. True: wait always.
    audit_reads_durable: bool = False

    @model_validator(mode="after")
    def _production_keys(self) -> Settings:
        if self.environment == "production" and (self.field_keys is None or self.blind_index_key is None):
            raise ValueError(
                "生产环境须设置 YIYANG_FIELD_KEYS 与 YIYANG_BLIND_INDEX_KEY "
                "(production needs YIYANG_FIELD_KEYS and YIYANG_BLIND_INDEX_KEY; see docs/access.md)"
            )
        return self

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
