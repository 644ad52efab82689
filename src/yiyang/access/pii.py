"""Personal fields at rest: ID numbers and phones sealed with the process keys, found again by
blind index, and the keyed digest that stands in for them where content is compared.

- ``EncryptedString(context)`` is the column type of an encrypted field: the ORM reads and writes
  plain values and the database holds only ``<kid>:<ciphertext>`` (``access/crypto.py``). Such a
  column cannot be compared with a value in SQL (every sealing differs): the type refuses
  ``==``, ``IN`` and ``LIKE`` with a value, so a lookup that forgot the blind index fails loudly
  instead of finding no one. ``IS NULL`` still works.
- ``write_index`` is the blind index a row stores (current key); ``lookup_indexes`` the values
  a lookup matches, under the current key and any previous one still being retired.
- ``content_digest`` hashes content that includes personal fields with a key: an unkeyed hash of
  a record whose other fields are readable would give an ID number away to a few million guesses.

Bulk paths (the import runner, the migration, rotation) call ``seal`` / ``unseal`` directly with
the same contexts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import operator
from typing import Any

import orjson
from sqlalchemy import String
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from yiyang.access.crypto import blind_index, decrypt_field, encrypt_field
from yiyang.access.keys import AccessKeys, get_keys

# Where each personal field rests, as (table, column, context). The context is bound into the
# ciphertext, so a value copied into another column does not open there.
RESIDENT_ID_NUMBER = "resident.id_number"
RESIDENT_PHONE = "resident.phone"
# A device secret waiting for the broker, sealed with the field keys (``devices.broker``); ":uid" follows.
DEVICE_SECRET = "broker_admission_pending.secret"
SOURCE_ID_NUMBER = "source_record.id_number"
SOURCE_PHONE = "source_record.phone"
ENCRYPTED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("resident", "id_number_enc", RESIDENT_ID_NUMBER),
    ("resident", "phone_enc", RESIDENT_PHONE),
    ("source_record", "id_number_enc", SOURCE_ID_NUMBER),
    ("source_record", "phone_enc", SOURCE_PHONE),
)
# Blind indexes: (table, encrypted column, its context, index column, index kind).
BLIND_INDEXES: tuple[tuple[str, str, str, str, str], ...] = (
    ("resident", "id_number_enc", RESIDENT_ID_NUMBER, "id_number_bidx", "id_number"),
    ("resident", "phone_enc", RESIDENT_PHONE, "phone_bidx", "phone"),
)
SEALED_LENGTH = 160  # kid (<= 16) + ":" + base64url(nonce + value + tag), for values up to ~80 bytes
INDEX_LENGTH = 64  # hex HMAC-SHA256


def seal(value: str | None, context: str, keys: AccessKeys | None = None) -> str | None:
    if value is None or value == "":
        return None
    return encrypt_field((keys or get_keys()).field_keys, value, context)


def unseal(value: str | None, context: str, keys: AccessKeys | None = None) -> str | None:
    if value is None:
        return None
    return decrypt_field((keys or get_keys()).field_keys, value, context)


def write_index(kind: str, value: str | None, keys: AccessKeys | None = None) -> str | None:
    """The blind index stored beside a value: under the current key."""
    if value is None or value == "":
        return None
    return blind_index((keys or get_keys()).blind_index_key, kind, value)


def lookup_indexes(kind: str, value: str, keys: AccessKeys | None = None) -> list[str]:
    """The index values that find ``value``: the current key's, then any previous key's."""
    keys = keys or get_keys()
    return [blind_index(key, kind, value) for key in (keys.blind_index_key, *keys.previous_blind_index_keys)]


def content_digest(blob: bytes, keys: AccessKeys | None = None) -> str:
    """A 128-bit keyed BLAKE2b of content that may hold personal fields."""
    keys = keys or get_keys()
    return hashlib.blake2b(blob, digest_size=16, key=_content_key(keys.blind_index_key)).hexdigest()


def record_digest(payload: dict[str, Any], observed_at: dt.datetime, keys: AccessKeys | None = None) -> str:
    """A source record's content hash: its whole payload (ID number and phone included) and the
    moment it was observed, as naive UTC so the zone it arrived in does not matter."""
    if observed_at.tzinfo is not None:
        observed_at = observed_at.astimezone(dt.UTC).replace(tzinfo=None)
    return content_digest(orjson.dumps([payload, observed_at.isoformat()], option=orjson.OPT_SORT_KEYS), keys)


_content_keys: dict[bytes, bytes] = {}


def _content_key(blind_key: bytes) -> bytes:
    key = _content_keys.get(blind_key)
    if key is None:
        # Its own key, derived from the blind-index key, so one secret does not serve two uses.
        key = _content_keys[blind_key] = hmac.new(
            blind_key, b"yiyang content digest", hashlib.sha256
        ).digest()
    return key


# --- the column type -------------------------------------------------------------------------

_VALUE_COMPARISONS = {
    operators.eq, operators.ne, operators.in_op, operators.not_in_op, operators.like_op,
    operators.not_like_op, operators.ilike_op, operators.not_ilike_op, operators.contains_op,
    operators.startswith_op, operators.endswith_op, operator.lt, operator.le, operator.gt, operator.ge,
}  # fmt: skip


class SealedValueComparison(TypeError):
    """A query compared an encrypted column with a value: use its blind index."""


class EncryptedString(TypeDecorator):
    """A personal field sealed with AES-256-GCM under the process keys (see module docstring)."""

    impl = String(SEALED_LENGTH)
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    class Comparator(TypeDecorator.Comparator):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in _VALUE_COMPARISONS and not (other and other[0] is None):
                raise SealedValueComparison(
                    "encrypted column compared with a value: match its blind index instead "
                    "(yiyang.access.pii.lookup_indexes)"
                )
            return super().operate(op, *other, **kwargs)

    comparator_factory = Comparator

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return seal(value, self.context)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return unseal(value, self.context)

    def __repr__(self) -> str:
        return f"EncryptedString({self.context!r})"
