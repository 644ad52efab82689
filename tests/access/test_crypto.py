"""Field encryption (AES-256-GCM with a key id), rotation, and blind indexes."""

from __future__ import annotations

import base64
import os
import threading

import pytest

from yiyang.access.crypto import (
    FieldDecryptError,
    KeySettingError,
    blind_index,
    decrypt_field,
    encrypt_field,
    generate_key,
    key_id_of,
    needs_rotation,
    parse_blind_index_key,
    parse_field_keys,
    reencrypt_field,
)

OLD = base64.b64encode(bytes(range(32))).decode()
NEW = base64.b64encode(bytes(range(32, 64))).decode()
ID_NUMBER = "11010519491231002X"  # the GB 11643 example number


def test_round_trip_and_the_key_id_in_front() -> None:
    keyring = parse_field_keys(f"k2:{NEW},k1:{OLD}")
    sealed = encrypt_field(keyring, ID_NUMBER, context="resident.id_number")
    assert sealed.startswith("k2:")
    assert key_id_of(sealed) == "k2"
    assert ID_NUMBER not in sealed
    assert decrypt_field(keyring, sealed, context="resident.id_number") == ID_NUMBER


def test_the_same_value_encrypts_differently_each_time() -> None:
    keyring = parse_field_keys(f"k1:{OLD}")
    assert encrypt_field(keyring, "13800138000") != encrypt_field(keyring, "13800138000")


def nonce_of(sealed: str) -> bytes:
    body = sealed.split(":", 1)[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))[:12]


def test_nonces_never_repeat_across_many_seals_threads_and_a_fork() -> None:
    # given seals drawn past several refills of the nonce pool, on two threads
    keyring = parse_field_keys(f"k1:{OLD}")
    seals: list[str] = []

    def seal_many() -> None:
        seals.extend(encrypt_field(keyring, "13800138000") for _ in range(2500))

    threads = [threading.Thread(target=seal_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # and seals made in a forked child, which must not reuse the parent's pooled nonces
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, b"".join(nonce_of(encrypt_field(keyring, "x")) for _ in range(100)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        from_child = pipe.read()
    os.waitpid(child, 0)
    parents_next = [nonce_of(encrypt_field(keyring, "x")) for _ in range(100)]
    # then every nonce is different
    nonces = [nonce_of(sealed) for sealed in seals] + parents_next
    nonces += [from_child[i : i + 12] for i in range(0, len(from_child), 12)]
    assert len(nonces) == 5200
    assert len(set(nonces)) == len(nonces)


def test_a_ciphertext_does_not_open_in_another_context_or_after_tampering() -> None:
    keyring = parse_field_keys(f"k1:{OLD}")
    sealed = encrypt_field(keyring, "13800138000", context="resident.phone")
    with pytest.raises(FieldDecryptError):
        decrypt_field(keyring, sealed, context="resident.id_number")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(FieldDecryptError):
        decrypt_field(keyring, flipped, context="resident.phone")


def test_an_unknown_key_id_is_named_in_the_error() -> None:
    sealed = encrypt_field(parse_field_keys(f"gone:{OLD}"), "x")
    with pytest.raises(FieldDecryptError, match="gone"):
        decrypt_field(parse_field_keys(f"k1:{NEW}"), sealed)


def test_rotation_re_encrypts_old_values_under_the_current_key() -> None:
    # given a value sealed under the old key
    old_keyring = parse_field_keys(f"k1:{OLD}")
    sealed = encrypt_field(old_keyring, ID_NUMBER, context="resident.id_number")
    # when a new key is put first and the value is rotated
    keyring = parse_field_keys(f"k2:{NEW},k1:{OLD}")
    assert needs_rotation(keyring, sealed)
    rotated = reencrypt_field(keyring, sealed, context="resident.id_number")
    # then it is sealed under the new key, opens without the old key, and rotating again changes nothing
    assert key_id_of(rotated) == "k2"
    assert decrypt_field(parse_field_keys(f"k2:{NEW}"), rotated, context="resident.id_number") == ID_NUMBER
    assert reencrypt_field(keyring, rotated, context="resident.id_number") == rotated


@pytest.mark.parametrize(
    "setting",
    ["", "k1", f"k:1:{OLD}", f"bad kid:{OLD}", "k1:not base64!", f"k1:{base64.b64encode(b'short').decode()}",
     f"k1:{OLD},k1:{NEW}"],
)  # fmt: skip
def test_bad_key_settings_are_refused_without_echoing_the_key(setting: str) -> None:
    with pytest.raises(KeySettingError) as error:
        parse_field_keys(setting)
    assert OLD not in str(error.value)


def test_blind_index_key_must_be_long_enough() -> None:
    with pytest.raises(KeySettingError):
        parse_blind_index_key(base64.b64encode(b"0123456789").decode())
    assert len(parse_blind_index_key(generate_key())) == 32


def test_blind_index_is_stable_across_spellings_of_one_value() -> None:
    key = parse_blind_index_key(generate_key())
    index = blind_index(key, "id_number", ID_NUMBER)
    # lower-case x, full-width digits, spaces, and the legacy 15-digit form of the same person
    assert blind_index(key, "id_number", "11010519491231002x") == index
    assert blind_index(key, "id_number", " １１０１０５１９４９１２３１００２Ｘ ") == index
    assert blind_index(key, "id_number", "110105491231002") == index
    phone = blind_index(key, "phone", "13800138000")
    for spelling in (
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "008613800138000",
        "8613800138000",
    ):
        assert blind_index(key, "phone", spelling) == phone


def test_blind_index_is_keyed_and_separates_kinds() -> None:
    key, other = parse_blind_index_key(generate_key()), parse_blind_index_key(generate_key())
    assert blind_index(key, "phone", "13800138000") != blind_index(other, "phone", "13800138000")
    assert blind_index(key, "phone", "13800138000") != blind_index(key, "phone", "13800138001")
    assert blind_index(key, "id_number", "13800138000") != blind_index(key, "phone", "13800138000")
    assert len(blind_index(key, "phone", "13800138000")) == 64
