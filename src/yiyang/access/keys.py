"""Where the field and blind-index keys come from: the settings, or for the embedded default a
development key file generated once under the data folder.

Development keys are for a laptop demo only: they live next to the database they protect. Any
other database, or ``YIYANG_ENVIRONMENT=production``, must configure both keys (docs/access.md).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from yiyang.access.crypto import (
    FieldKeyring,
    generate_key,
    parse_blind_index_key,
    parse_field_keys,
)
from yiyang.config import Settings, get_settings

log = logging.getLogger(__name__)

DEV_KEY_FILE = "dev-keys.json"


class MissingKeys(RuntimeError):
    """Keys are required here and not configured."""


@dataclass(frozen=True, slots=True)
class AccessKeys:
    field_keys: FieldKeyring
    blind_index_key: bytes
    # Blind-index keys being retired: lookups still try them until every index is re-keyed.
    previous_blind_index_keys: tuple[bytes, ...] = ()

    def __repr__(self) -> str:
        return f"AccessKeys(current={self.field_keys.current.kid!r})"


def embedded_default(settings: Settings) -> bool:
    return settings.environment != "production" and settings.resolved_database_url.startswith("sqlite")


def load_keys(settings: Settings) -> AccessKeys:
    field_text = settings.field_keys.get_secret_value() if settings.field_keys else None
    blind_text = settings.blind_index_key.get_secret_value() if settings.blind_index_key else None
    if field_text is None or blind_text is None:
        if not embedded_default(settings):
            raise MissingKeys(
                "须设置 YIYANG_FIELD_KEYS 与 YIYANG_BLIND_INDEX_KEY：开发密钥只用于内嵌 SQLite "
                "(set YIYANG_FIELD_KEYS and YIYANG_BLIND_INDEX_KEY: development keys are only for the "
                "embedded SQLite default; `yiyang keys generate` prints new ones; see docs/access.md)"
            )
        dev = development_keys(settings.data_dir)
        field_text = field_text or dev["field_keys"]
        blind_text = blind_text or dev["blind_index_key"]
    previous = settings.blind_index_key_previous
    return AccessKeys(
        parse_field_keys(field_text),
        parse_blind_index_key(blind_text),
        (parse_blind_index_key(previous.get_secret_value()),) if previous else (),
    )


def development_keys(data_dir: Path) -> dict[str, str]:
    """Read the development key file, creating it (mode 0600) on first use."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = {"field_keys": f"dev1:{generate_key()}", "blind_index_key": generate_key()}
        handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".dev-keys-")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(keys, file)
            os.chmod(temporary, 0o600)
            # link() fails if the file appeared meanwhile: two processes starting at once agree on one.
            os.link(temporary, path)
            log.warning("generated development keys in %s: not for production", path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return json.loads(path.read_text())


_in_use: AccessKeys | None = None


def get_keys() -> AccessKeys:
    """The keys for this process: from the process settings, unless ``use_keys`` set others."""
    global _in_use
    if _in_use is None:
        _in_use = load_keys(get_settings())
    return _in_use


def use_keys(keys: AccessKeys | None) -> AccessKeys | None:
    """Replace this process's keys (tests, a rotation run); ``None`` reloads from the settings.
    Returns the keys in use before, so a caller can put them back."""
    global _in_use
    previous, _in_use = _in_use, keys
    return previous
