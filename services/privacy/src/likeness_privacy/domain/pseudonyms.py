"""Keyed pseudonyms for subjects and the IP minimisation promised by the apps' policies."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a value, hex."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def subject_pseudonym(key: bytes, subject_id: str) -> str:
    """The pseudonymous subject id used in records and tombstones."""
    return keyed_hash(key, "subject:" + subject_id)


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address as the client has it: an IPv4 address seen through IPv6 (``::ffff:a.b.c.d``) is IPv4."""
    addr = ipaddress.ip_address(ip.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def ip_prefix(ip: str) -> str:
    """The truncated network of an address: /24 for IPv4, /48 for IPv6."""
    addr = _address(ip)
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def ip_hash(key: bytes, ip: str) -> str:
    """Keyed hash of a normalised address, so equal IPs match without being stored."""
    return keyed_hash(key, "ip:" + _address(ip).compressed)


def salted_commit(salt: bytes, subject_id: str) -> str:
    """Commitment to a subject id that cannot be linked back once the salt is gone."""
    return hashlib.sha256(salt + subject_id.encode()).hexdigest()
