"""Password hashing with Argon2id (RFC 9106).

Parameters are RFC 9106's second recommended option (section 4, for memory-constrained
environments): t=3 passes, m=64 MiB, p=4 lanes, a 16-byte salt and a 32-byte tag. On a
server core one hash takes tens of milliseconds, which is what makes guessing slow. Hashes carry
their parameters, so raising them later re-hashes each password at its owner's next sign-in.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from yiyang.errors import Invalid

TIME_COST = 3
MEMORY_COST_KIB = 64 * 1024
PARALLELISM = 4
HASH_LEN = 32
SALT_LEN = 16

MIN_LENGTH = 8
MAX_LENGTH = 256  # hashing cost grows with length; bound it so a request cannot be made to hash megabytes

_hasher = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
    hash_len=HASH_LEN,
    salt_len=SALT_LEN,
)
_dummy_hashes: dict[PasswordHasher, str] = {}


def use_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Swap the hasher and return the one in use before (tests use argon2's cheapest profile)."""
    global _hasher
    previous, _hasher = _hasher, hasher
    return previous


def _dummy_hash() -> str:
    # Verified against when the user name is unknown, so a wrong name costs as long as a wrong
    # password. Made on first use: hashing at import would slow every command's start.
    if _hasher not in _dummy_hashes:
        _dummy_hashes[_hasher] = _hasher.hash("no such user: this hash only spends the same time")
    return _dummy_hashes[_hasher]


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(
            "auth.password.short",
            f"密码至少 {MIN_LENGTH} 个字符 (password needs at least {MIN_LENGTH} characters)",
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(
            "auth.password.long", f"密码最多 {MAX_LENGTH} 个字符 (password is longer than {MAX_LENGTH})"
        )


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash still spends the time of one check."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
