"""Argon2id password hashing."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from yiyang.access import passwords
from yiyang.errors import Invalid


def test_production_parameters_are_rfc_9106_and_a_wrong_password_fails() -> None:
    # given the production hasher (the autouse fixture swapped in a cheap one: swap it back here)
    production = PasswordHasher(
        time_cost=passwords.TIME_COST,
        memory_cost=passwords.MEMORY_COST_KIB,
        parallelism=passwords.PARALLELISM,
        hash_len=passwords.HASH_LEN,
        salt_len=passwords.SALT_LEN,
    )
    cheap = passwords.use_hasher(production)
    try:
        # when a password is hashed
        hashed = passwords.hash_password("平安喜乐-2026")
        # then the hash names Argon2id with m=64 MiB, t=3, p=4, and only the right password verifies
        assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert passwords.verify_password(hashed, "平安喜乐-2026")
        assert not passwords.verify_password(hashed, "平安喜乐-2025")
        assert not passwords.needs_rehash(hashed)
    finally:
        passwords.use_hasher(cheap)


def test_same_password_hashes_differently_each_time() -> None:
    assert passwords.hash_password("same-password") != passwords.hash_password("same-password")


def test_a_hash_with_weaker_parameters_needs_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("old-password")
    assert passwords.verify_password(weak, "old-password")
    assert passwords.needs_rehash(weak)


def test_a_missing_or_broken_hash_never_verifies() -> None:
    assert not passwords.verify_password(None, "anything-at-all")
    assert not passwords.verify_password("not-a-hash", "anything-at-all")


def test_too_short_and_too_long_passwords_are_refused() -> None:
    with pytest.raises(Invalid) as short:
        passwords.hash_password("1234567")
    assert short.value.code == "auth.password.short"
    with pytest.raises(Invalid):
        passwords.hash_password("x" * (passwords.MAX_LENGTH + 1))
    assert not passwords.verify_password(passwords.hash_password("x" * 8), "x" * 10_000)
