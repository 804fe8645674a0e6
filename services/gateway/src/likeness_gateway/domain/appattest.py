"""iOS App Attest: verify an attestation object for a key id against a challenge (Apple's published steps).

Off unless the gateway is given the app id ("<team id>.<bundle id>") and Apple's App Attest root CA. Only
the standard library and `cryptography` are used; the CBOR reader covers what attestation objects hold.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

NONCE_OID = x509.ObjectIdentifier("1.2.840.113635.100.8.2")
AAGUIDS = (b"appattestdevelop", b"appattest" + b"\x00" * 7)


class AttestationError(ValueError):
    """The attestation does not prove a genuine instance of the app."""


def _cbor(data: bytes, at: int, depth: int = 0) -> tuple[Any, int]:
    if depth > 8 or at >= len(data):
        raise AttestationError("the attestation object is not valid CBOR")
    head = data[at]
    major, info = head >> 5, head & 0x1F
    at += 1
    if info < 24:
        value = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if at + size > len(data):
            raise AttestationError("the attestation object is truncated")
        value = int.from_bytes(data[at : at + size], "big")
        at += size
    else:
        raise AttestationError("the attestation object uses unsupported CBOR")
    if major == 0:
        return value, at
    if major in (2, 3):
        if at + value > len(data):
            raise AttestationError("the attestation object is truncated")
        raw = data[at : at + value]
        return (bytes(raw) if major == 2 else raw.decode("utf-8", "strict")), at + value
    if major == 4:
        items = []
        for _ in range(min(value, 64)):
            item, at = _cbor(data, at, depth + 1)
            items.append(item)
        return items, at
    if major == 5:
        mapping = {}
        for _ in range(min(value, 64)):
            key, at = _cbor(data, at, depth + 1)
            mapping[key], at = _cbor(data, at, depth + 1)
        return mapping, at
    raise AttestationError("the attestation object uses unsupported CBOR")


def _der(data: bytes, at: int) -> tuple[int, bytes, int]:
    """One DER TLV: tag, contents, offset after it."""
    if at + 2 > len(data):
        raise AttestationError("the attestation nonce is malformed")
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise AttestationError("the attestation nonce is malformed")
    return tag, data[at : at + length], at + length


def _nonce_of(cert: x509.Certificate) -> bytes:
    try:
        raw = cert.extensions.get_extension_for_oid(NONCE_OID).value.value  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        raise AttestationError("the credential certificate carries no nonce") from None
    tag, sequence, _ = _der(raw, 0)
    if tag != 0x30:
        raise AttestationError("the attestation nonce is malformed")
    tag, tagged, _ = _der(sequence, 0)
    if tag != 0xA1:
        raise AttestationError("the attestation nonce is malformed")
    tag, nonce, _ = _der(tagged, 0)
    if tag != 0x04:
        raise AttestationError("the attestation nonce is malformed")
    return nonce


def _check_chain(chain: list[x509.Certificate], root: x509.Certificate, now: datetime) -> None:
    issuers = [*chain[1:], root]
    for cert, issuer in zip(chain, issuers, strict=True):
        try:
            cert.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):
            raise AttestationError("the attestation certificates do not chain to the App Attest root") from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise AttestationError("an attestation certificate is outside its validity period")


def verify_attestation(
    attestation_object: bytes, challenge: bytes, key_id: bytes, app_id: str, root: x509.Certificate, now: datetime
) -> None:
    """Raise AttestationError unless `attestation_object` attests `key_id` for `app_id` over `challenge`."""
    decoded, end = _cbor(attestation_object, 0)
    if not isinstance(decoded, dict) or end != len(attestation_object) or decoded.get("fmt") != "apple-appattest":
        raise AttestationError("not an Apple App Attest attestation object")
    statement, auth_data = decoded.get("attStmt"), decoded.get("authData")
    x5c = statement.get("x5c") if isinstance(statement, dict) else None
    if not isinstance(auth_data, bytes) or not isinstance(x5c, list) or len(x5c) != 2 or not all(isinstance(c, bytes) for c in x5c):
        raise AttestationError("the attestation object lacks its certificates or authenticator data")
    try:
        chain = [x509.load_der_x509_certificate(c) for c in x5c]
    except ValueError:
        raise AttestationError("an attestation certificate cannot be read") from None
    _check_chain(chain, root, now)
    nonce = hashlib.sha256(auth_data + hashlib.sha256(challenge).digest()).digest()
    if not hmac.compare_digest(_nonce_of(chain[0]), nonce):
        raise AttestationError("the attestation was not made for this challenge")
    public = chain[0].public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if not hmac.compare_digest(hashlib.sha256(public).digest(), key_id):
        raise AttestationError("the attested key is not the key id given")
    if len(auth_data) < 55:
        raise AttestationError("the authenticator data is truncated")
    rp_id_hash, counter, aaguid = auth_data[:32], struct.unpack(">I", auth_data[33:37])[0], auth_data[37:53]
    (id_length,) = struct.unpack(">H", auth_data[53:55])
    if not hmac.compare_digest(rp_id_hash, hashlib.sha256(app_id.encode()).digest()):
        raise AttestationError("the attestation is for another app")
    if counter != 0 or aaguid not in AAGUIDS or auth_data[55 : 55 + id_length] != key_id:
        raise AttestationError("the authenticator data does not describe a new App Attest key")
