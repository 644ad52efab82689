"""Where keys come from: settings, or a development key file for the embedded default."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from yiyang.access.crypto import decrypt_field, encrypt_field, generate_key
from yiyang.access.keys import DEV_KEY_FILE, MissingKeys, load_keys
from yiyang.config import Settings


def test_the_embedded_default_generates_and_keeps_development_keys(tmp_path: Path) -> None:
    # given the embedded default with no keys configured
    settings = Settings(data_dir=tmp_path, database_url=None, field_keys=None, blind_index_key=None)
    # when keys are loaded twice (two starts of the app)
    first = load_keys(settings)
    sealed = encrypt_field(first.field_keys, "13800138000")
    second = load_keys(settings)
    # then the same keys come back from one file only its owner can read
    assert decrypt_field(second.field_keys, sealed) == "13800138000"
    assert second.blind_index_key == first.blind_index_key
    path = tmp_path / DEV_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dev-keys")] == []


def test_postgresql_without_keys_is_refused_clearly(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql://db/yiyang", field_keys=None, blind_index_key=None
    )
    with pytest.raises(MissingKeys, match="YIYANG_FIELD_KEYS"):
        load_keys(settings)
    assert not (tmp_path / DEV_KEY_FILE).exists()


def test_production_without_keys_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="YIYANG_BLIND_INDEX_KEY"):
        Settings(data_dir=tmp_path, environment="production", field_keys=None, blind_index_key=None)


def test_configured_keys_are_used_and_never_printed(tmp_path: Path) -> None:
    field_key, blind_key = generate_key(), generate_key()
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://db/yiyang",
        field_keys=f"k7:{field_key}",
        blind_index_key=blind_key,
    )
    keys = load_keys(settings)
    assert keys.field_keys.current.kid == "k7"
    assert field_key not in repr(keys) and field_key not in repr(settings) and blind_key not in repr(settings)
    assert not (tmp_path / DEV_KEY_FILE).exists()
