"""A locally generated App Attest chain and attestation objects, shaped like Apple's (tests only)."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

APP_ID = "TEAM123456.com.likeness.tests"


def cbor(value: Any) -> bytes:
    """The CBOR subset attestation objects use: text, bytes, unsigned ints, lists and maps."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
        raise ValueError(n)

    if isinstance(value, int):
        return head(0, value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        return head(3, len(value.encode())) + value.encode()
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool, extra: x509.ExtensionType | None = None) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if extra is not None:
        builder = builder.add_extension(extra, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class AttestChain:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def attest(self, challenge: bytes, app_id: str = APP_ID) -> tuple[bytes, bytes]:
        """A new device key's (key id, attestation object) over `challenge`."""
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        key_id = hashlib.sha256(public).digest()
        auth_data = (
            hashlib.sha256(app_id.encode()).digest()
            + b"\x40"
            + struct.pack(">I", 0)
            + b"appattestdevelop"
            + struct.pack(">H", len(key_id))
            + key_id
        )
        nonce = hashlib.sha256(auth_data + hashlib.sha256(challenge).digest()).digest()
        # SEQUENCE { [1] { OCTET STRING nonce } }
        der = bytes([0x30, 36, 0xA1, 34, 0x04, 32]) + nonce
        extension = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.840.113635.100.8.2"), der)
        cred = _cert(key_id.hex(), key, "Test App Attestation CA 1", self.ca_key, False, extension)
        x5c = [c.public_bytes(serialization.Encoding.DER) for c in (cred, self.ca)]
        return key_id, cbor({"fmt": "apple-appattest", "attStmt": {"x5c": x5c, "receipt": b"r"}, "authData": auth_data})


def new_chain() -> AttestChain:
    root_key, ca_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    root = _cert("Test App Attestation Root CA", root_key, "Test App Attestation Root CA", root_key, True)
    ca = _cert("Test App Attestation CA 1", ca_key, "Test App Attestation Root CA", root_key, True)
    return AttestChain(root_key, root, ca_key, ca)
