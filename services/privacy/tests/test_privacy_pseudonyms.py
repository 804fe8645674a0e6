"""IP minimisation and keyed pseudonyms: what records keep instead of addresses and subject ids."""

from __future__ import annotations

import hashlib

import pytest

from likeness_privacy.domain.pseudonyms import ip_hash, ip_prefix, keyed_hash, salted_commit, subject_pseudonym

KEY, OTHER_KEY = b"k" * 32, b"o" * 32


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("203.0.113.0", "203.0.113.0/24"),
        (" 198.51.100.255\n", "198.51.100.0/24"),
        ("2001:db8:85a3:1234:5678::1", "2001:db8:85a3::/48"),
        ("2001:0DB8:85A3:ffff:0000:0000:0000:0001", "2001:db8:85a3::/48"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),  # an IPv4 client seen through a dual-stack socket
        ("::1", "::/48"),
    ],
)
def test_ip_prefix_keeps_only_the_network(ip: str, prefix: str) -> None:
    assert ip_prefix(ip) == prefix


@pytest.mark.parametrize("bad", ["", "not-an-ip", "203.0.113", "203.0.113.256", "2001:db8::g", "203.0.113.7/24"])
def test_what_is_not_an_address_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        ip_prefix(bad)
    with pytest.raises(ValueError):
        ip_hash(KEY, bad)


def test_ip_hash_matches_equal_addresses_however_written_and_hides_them() -> None:
    spelled = ip_hash(KEY, "2001:0db8:0000:0000:0000:0000:0000:0001")
    assert spelled == ip_hash(KEY, "2001:db8::1") == ip_hash(KEY, " 2001:DB8::1 ")
    assert ip_hash(KEY, "203.0.113.77") != ip_hash(KEY, "203.0.113.78")
    # Keyed: without the key an address cannot be confirmed by hashing guesses.
    assert ip_hash(KEY, "203.0.113.77") != ip_hash(OTHER_KEY, "203.0.113.77")
    # Nor is it a plain hash anyone could recompute from a list of addresses.
    assert ip_hash(KEY, "203.0.113.77") not in {hashlib.sha256(v.encode()).hexdigest() for v in ("203.0.113.77", "ip:203.0.113.77")}


def test_subject_pseudonyms_are_stable_keyed_and_separated_from_other_hashes() -> None:
    sid = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
    assert subject_pseudonym(KEY, sid) == subject_pseudonym(KEY, sid)
    assert subject_pseudonym(KEY, sid) != subject_pseudonym(KEY, sid.replace("f", "e"))
    assert subject_pseudonym(KEY, sid) != subject_pseudonym(OTHER_KEY, sid)
    # Domain separation: a subject id and an IP never share a hash space.
    assert subject_pseudonym(KEY, sid) != keyed_hash(KEY, sid)
    assert ip_hash(KEY, "203.0.113.77") != keyed_hash(KEY, "203.0.113.77")


def test_salted_commit_cannot_be_recomputed_without_its_salt() -> None:
    sid = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
    salt = b"s" * 16
    assert salted_commit(salt, sid) == salted_commit(salt, sid)
    assert salted_commit(salt, sid) != salted_commit(b"t" * 16, sid)
    assert salted_commit(b"", sid) != salted_commit(salt, sid)


def test_ipv4_seen_through_ipv6_hashes_and_truncates_as_the_same_client() -> None:
    assert ip_hash(KEY, "::ffff:203.0.113.77") == ip_hash(KEY, "203.0.113.77")
    assert ip_prefix("::ffff:203.0.113.77") == ip_prefix("203.0.113.77") == "203.0.113.0/24"
    assert ip_hash(KEY, "::ffff:203.0.113.78") != ip_hash(KEY, "203.0.113.77")
