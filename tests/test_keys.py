import re

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
