"""Field encryption and blind indexes for personal data. Pure: keys are passed in.

Ciphertext format: ``<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>``. AES-256-GCM (NIST SP 800-38D)
with a random 96-bit nonce; the key id in front tells which key sealed a value, so rotation can
re-encrypt old values while new ones use the current key. An optional ``context`` (say
``"resident.id_number"``) is bound as associated data, so a ciphertext cannot be moved to another
column and still decrypt.

A blind index is HMAC-SHA256 (RFC 2104) over the normalised value under its own key, so an ID
number or a phone can be found by exact match without storing it in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yiyang.residents.identity import upgrade_15

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM nonce size SP 800-38D recommends
BLIND_INDEX_MIN_KEY_BYTES = 32
_KID = re.compile(r"[A-Za-z0-9_-]{1,16}")


class KeySettingError(ValueError):
    """A key setting that cannot be used; the message says which part is wrong, never the key."""


class FieldDecryptError(ValueError):
    """A ciphertext that does not open: unknown key id, damaged, or sealed for another context."""


@dataclass(frozen=True, slots=True)
class FieldKey:
    kid: str
    key: bytes = b""

    def __repr__(self) -> str:  # never print key material
        return f"FieldKey(kid={self.kid!r})"


@dataclass(frozen=True, slots=True)
class FieldKeyring:
    """The field keys in use; the first is current (new values), the rest only decrypt."""

    keys: tuple[FieldKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeySettingError("至少需要一个字段加密密钥 (at least one field key is needed)")
        kids = [key.kid for key in self.keys]
        if len(set(kids)) != len(kids):
            raise KeySettingError("字段加密密钥编号重复 (field key ids must be unique)")

    @property
    def current(self) -> FieldKey:
        return self.keys[0]

    def get(self, kid: str) -> FieldKey | None:
        return next((key for key in self.keys if key.kid == kid), None)


def generate_key() -> str:
    """A new random 256-bit key, base64-encoded as the settings expect it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_key(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeySettingError(f"{what} 不是有效的 base64 ({what} is not valid base64)") from None


def parse_field_keys(text: str) -> FieldKeyring:
    """Read ``YIYANG_FIELD_KEYS``: comma-separated ``kid:base64key``, the current key first."""
    keys = []
    for position, item in enumerate(part.strip() for part in text.split(",") if part.strip()):
        kid, sep, encoded = item.partition(":")
        if not sep or not _KID.fullmatch(kid):
            raise KeySettingError(
                f"第 {position + 1} 个字段密钥应写作 kid:base64 (field key {position + 1} must be kid:base64, "
                "kid of 1-16 letters, digits, _ or -)"
            )
        key = _decode_key(encoded, f"field key {kid}")
        if len(key) != KEY_BYTES:
            raise KeySettingError(
                f"字段密钥 {kid} 须为 32 字节 (field key {kid} must be 32 bytes, got {len(key)})"
            )
        keys.append(FieldKey(kid, key))
    return FieldKeyring(tuple(keys))


def parse_blind_index_key(text: str) -> bytes:
    """Read ``YIYANG_BLIND_INDEX_KEY``: base64 of at least 32 random bytes."""
    key = _decode_key(text, "blind index key")
    if len(key) < BLIND_INDEX_MIN_KEY_BYTES:
        raise KeySettingError(
            f"检索索引密钥至少 32 字节 (blind index key must be at least 32 bytes, got {len(key)})"
        )
    return key


def _aad(context: str) -> bytes:
    return context.encode("utf-8")


@lru_cache(maxsize=16)
def _aead(key: bytes) -> AESGCM:
    # Built once per key: an import seals a few values per row, and building the cipher costs
    # about as much as sealing a short value.
    return AESGCM(key)


class _Nonces(threading.local):
    """Random nonces drawn from the OS a thousand at a time, per thread.

    An import seals two or three values per row; one ``getrandom`` call for each cost about a
    tenth of the import's main thread, and each call lets another thread take the interpreter.
    The bytes are the same OS randomness. A forked child starts a fresh pool (``_renew_nonces``),
    so parent and child never share a nonce."""

    def __init__(self) -> None:
        self.buffer = b""
        self.offset = 0

    def take(self) -> bytes:
        start = self.offset
        if start + NONCE_BYTES > len(self.buffer):
            self.buffer, start = os.urandom(NONCE_BYTES * 1024), 0
        self.offset = start + NONCE_BYTES
        return self.buffer[start : start + NONCE_BYTES]


_nonces = _Nonces()


def _renew_nonces() -> None:
    global _nonces
    _nonces = _Nonces()


os.register_at_fork(after_in_child=_renew_nonces)


def encrypt_field(keyring: FieldKeyring, plaintext: str, context: str = "") -> str:
    """Seal a value under the current key; the same value encrypts differently every time."""
    key = keyring.current
    nonce = _nonces.take()
    sealed = _aead(key.key).encrypt(nonce, plaintext.encode("utf-8"), _aad(context))
    return f"{key.kid}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii').rstrip('=')}"


def key_id_of(ciphertext: str) -> str:
    kid, sep, _body = ciphertext.partition(":")
    if not sep or not _KID.fullmatch(kid):
        raise FieldDecryptError("密文缺少密钥编号 (ciphertext has no key id)")
    return kid


def decrypt_field(keyring: FieldKeyring, ciphertext: str, context: str = "") -> str:
    kid = key_id_of(ciphertext)
    key = keyring.get(kid)
    if key is None:
        raise FieldDecryptError(
            f"未知的密钥编号 {kid} (unknown key id {kid}: is the old key still configured?)"
        )
    body = ciphertext.split(":", 1)[1]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise FieldDecryptError("密文已损坏 (ciphertext is damaged)") from None
    if len(raw) < NONCE_BYTES + 16:
        raise FieldDecryptError("密文已损坏 (ciphertext is damaged)")
    try:
        plain = _aead(key.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(context))
    except InvalidTag:
        raise FieldDecryptError(
            "密文校验失败 (ciphertext failed authentication: damaged or wrong context)"
        ) from None
    return plain.decode("utf-8")


def needs_rotation(keyring: FieldKeyring, ciphertext: str) -> bool:
    return key_id_of(ciphertext) != keyring.current.kid


def reencrypt_field(keyring: FieldKeyring, ciphertext: str, context: str = "") -> str:
    """The value sealed under the current key; unchanged when it already is."""
    if not needs_rotation(keyring, ciphertext):
        return ciphertext
    return encrypt_field(keyring, decrypt_field(keyring, ciphertext, context), context)


# --- blind indexes --------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-()（）.+]")


def normalise_id_number(value: str) -> str:
    """Full-width forms folded, spaces dropped, ``x`` upper-cased, a 15-digit number upgraded."""
    text = unicodedata.normalize("NFKC", value).strip().replace(" ", "").upper()
    if len(text) == 15 and text.isdigit():
        return upgrade_15(text)  # GB 11643-1999: the 18-character form of a legacy number
    return text


def normalise_phone(value: str) -> str:
    """Digits only, without the +86 / 0086 country prefix in front of a mainland mobile."""
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", value).strip())
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13 and digits[2] == "1":
        digits = digits[2:]
    return digits


_NORMALISERS = {"id_number": normalise_id_number, "phone": normalise_phone}


def blind_index(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of ``kind`` and the normalised value: equal inputs, equal index; no key, no guess."""
    normalise = _NORMALISERS.get(kind)
    if normalise is None:
        raise ValueError(f"no blind index for {kind!r}")
    # The kind is inside the MAC so an ID number and a phone never share an index value.
    mac = _keyed_macs.get(key)
    if mac is None:
        mac = _keyed_macs[key] = hmac.new(key, digestmod=hashlib.sha256)
    # From a copy of the keyed state: a third faster, and an import makes a few per row.
    mac = mac.copy()
    mac.update(kind.encode("ascii") + b"\x00" + normalise(value).encode("utf-8"))
    return mac.hexdigest()


_keyed_macs: dict[bytes, hmac.HMAC] = {}
