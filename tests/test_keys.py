import re
import secrets

from vigint import keys


def test_generated_key_has_the_documented_format():
    key = keys.generate()
    assert re.fullmatch(r"vig_[0-9A-Za-z]{49}", key)
    assert keys.is_well_formed(key)
    assert keys.display_prefix(key) == key[:10]


def test_keys_are_unique():
    assert len({keys.generate() for _ in range(200)}) == 200


def test_every_single_character_change_fails_the_checksum():
    key = keys.generate()
    for position in range(len(keys.PREFIX), len(key)):
        replacement = "A" if key[position] != "A" else "B"
        mistyped = key[:position] + replacement + key[position + 1:]
        assert not keys.is_well_formed(mistyped), position


def test_malformed_keys_are_refused():
    key = keys.generate()
    for bad in ["", "vig_", key[:-1], key + "0", "pat_" + key[4:], key.replace(key[10], "-", 1), None, 42]:
        assert not keys.is_well_formed(bad)


def test_hash_is_sha256_hex_and_not_the_key():
    key = keys.generate()
    digest = keys.hash_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == keys.hash_key(key) != keys.hash_key(keys.generate())


def test_a_handed_over_key_is_derived_from_both_the_link_s_token_and_the_seal():
    token, seal = "t" * 43, bytes(range(32))
    key = keys.derive(token, seal)
    assert keys.is_well_formed(key) and re.fullmatch(r"vig_[0-9A-Za-z]{49}", key)
    assert keys.derive(token, seal) == key  # the page derives the same key again from the link and the database
    others = {keys.derive("u" + token[1:], seal), keys.derive(token, bytes(32)), keys.derive(token, seal + b"\0")}
    assert key not in others and len(others) == 3  # the token alone, or the seal alone, gives another key
    drawn = {keys.derive(secrets.token_urlsafe(32), keys.new_seal()) for _ in range(200)}
    assert len(drawn) == 200 and all(keys.is_well_formed(k) for k in drawn)
    # All 62 characters in each position but the first: 256 bits spread over 43 base62 digits.
    assert all(len({k[position] for k in drawn}) > 40 for position in range(5, 47))


def test_expiry_is_said_in_days_hours_or_minutes_never_longer_than_it_is():
    now = 1_000_000.0
    assert keys.expires_in(now + 6.9 * 86_400, now) == "expires in 6 days"
    assert keys.expires_in(now + 2 * 86_400, now) == "expires in 2 days"
    assert keys.expires_in(now + 47.5 * 3600, now) == "expires in 47 h"
    assert keys.expires_in(now + 3600, now) == "expires in 1 h"
    assert keys.expires_in(now + 61, now) == "expires in 2 min"
    assert keys.expires_in(now, now) == keys.expires_in(now - 5, now) == "expired"
