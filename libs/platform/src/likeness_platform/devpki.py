"""Development PKI: a CA and per-identity certificates for `make run` and the tests (no openssl).

Layout (the cert-manager Secret format, one folder per identity):
    <run_dir>/tls/ca/ca.crt, ca.key                 the CA (its key never leaves this folder)
    <run_dir>/tls/<service>/tls.crt, tls.key, ca.crt
    <run_dir>/tls/operator-<name>/tls.crt, ...      for `operator/<name>`
Each certificate names its identity as the URI SAN `spiffe://likeness/<identity>` and is valid for
both server and client authentication, for localhost / 127.0.0.1 / ::1 and the service's name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SPIFFE_PREFIX = "spiffe://likeness/"
SERVICES = ("gateway", "ingestion", "faces", "render", "billing", "privacy")
# Every operator role (likeness_platform.policy.ROLES): what a development operator gets by default.
OPERATOR_ROLES = ("admin", "auditor", "support")


def spiffe_id(identity: str) -> str:
    """`render` -> `spiffe://likeness/render`; `operator/alice` -> `spiffe://likeness/operator/alice`."""
    return SPIFFE_PREFIX + identity


def folder_name(identity: str) -> str:
    """The folder of an identity's files: `operator/alice` -> `operator-alice`."""
    return identity.replace("/", "-")


class TlsSettings(TypedDict):
    """The ServiceSettings fields of a certificate (`ServiceSettings(**files.settings())`)."""

    tls_cert_file: str
    tls_key_file: str
    tls_ca_file: str


@dataclass(frozen=True)
class TlsFiles:
    """Where an identity's certificate, key and trusted CA bundle are."""

    cert: Path
    key: Path
    ca: Path

    def settings(self) -> TlsSettings:
        """As ServiceSettings fields."""
        return TlsSettings(tls_cert_file=str(self.cert), tls_key_file=str(self.key), tls_ca_file=str(self.ca))

    def env(self) -> dict[str, str]:
        """As LIKENESS_* environment variables."""
        return {"LIKENESS_TLS_CERT_FILE": str(self.cert), "LIKENESS_TLS_KEY_FILE": str(self.key), "LIKENESS_TLS_CA_FILE": str(self.ca)}

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(certificate chain, private key, CA bundle) as PEM bytes."""
        return self.cert.read_bytes(), self.key.read_bytes(), self.ca.read_bytes()


ROLE_OU_PREFIX = "likeness-role:"


def _wanted_roles(identity: str, roles: Sequence[str] | None) -> frozenset[str]:
    """Services carry no roles; an operator the ones asked for, every role when none are named."""
    if not identity.startswith("operator/"):
        return frozenset()
    return frozenset(OPERATOR_ROLES if roles is None else roles)


def _roles_in(cert_file: Path) -> frozenset[str]:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return frozenset()
    units = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    return frozenset(u[len(ROLE_OU_PREFIX) :] for u in units if u.startswith(ROLE_OU_PREFIX))


def _write(path: Path, data: bytes, private: bool = False) -> None:
    # Write then rename, so a reader never sees half a file (rotation happens under running services).
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    if private:
        tmp.chmod(0o600)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class DevPki:
    """A development CA under `<run_dir>/tls`, created on first use and reused afterwards."""

    def __init__(self, run_dir: Path, ca_name: str = "Likeness development CA") -> None:
        self.root = Path(run_dir) / "tls"
        self._ca_dir = self.root / "ca"
        self._ca_name = ca_name
        self._ca_key: ec.EllipticCurvePrivateKey | None = None
        self._ca_cert: x509.Certificate | None = None

    @property
    def ca_file(self) -> Path:
        return self._ca_dir / "ca.crt"

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if self._ca_key is not None and self._ca_cert is not None:
            return self._ca_key, self._ca_cert
        key_file, cert_file = self._ca_dir / "ca.key", self.ca_file
        if key_file.exists() and cert_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        else:
            self._ca_dir.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self._ca_name)])
            now = dt.datetime.now(dt.UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256())
            )
            _write(key_file, _pem_key(key), private=True)
            _write(cert_file, cert.public_bytes(serialization.Encoding.PEM))
        self._ca_key, self._ca_cert = key, cert
        return key, cert

    def files(self, identity: str) -> TlsFiles:
        """Where `identity`'s files are (whether or not they exist yet)."""
        folder = self.root / folder_name(identity)
        return TlsFiles(cert=folder / "tls.crt", key=folder / "tls.key", ca=folder / "ca.crt")

    def ensure(self, identity: str, roles: Sequence[str] | None = None) -> TlsFiles:
        """`identity`'s files, issuing them if they do not exist (or, for an operator, carry other roles than asked:
        a run folder made before roles existed gets its development operator re-issued with them)."""
        files = self.files(identity)
        if files.cert.exists() and files.key.exists() and files.ca.exists():
            wanted = _wanted_roles(identity, roles)
            if not identity.startswith("operator/") or _roles_in(files.cert) == wanted:
                return files
        return self.issue(identity, roles=roles)

    def issue(
        self, identity: str, days: float = 365, not_before: dt.datetime | None = None, roles: Sequence[str] | None = None
    ) -> TlsFiles:
        """A fresh key and certificate for `identity` (replacing any earlier one: this is rotation).

        Operator roles go into the Subject as OU `likeness-role:<role>`; a development operator gets
        every role unless `roles` names fewer (services never get any)."""
        ca_key, ca_cert = self._ca()
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, identity)]
        subject += [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{ROLE_OU_PREFIX}{role}")
            for role in sorted(_wanted_roles(identity, roles))
        ]
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        service = identity.split("/")[0]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.UniformResourceIdentifier(spiffe_id(identity)),
                        x509.DNSName("localhost"),
                        x509.DNSName(service),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files = self.files(identity)
        files.cert.parent.mkdir(parents=True, exist_ok=True)
        # The key first: a reader that sees the new certificate must find its key.
        _write(files.key, _pem_key(key), private=True)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
        _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        return files

    def ensure_services(self, identities: tuple[str, ...] = SERVICES) -> dict[str, TlsFiles]:
        """Files for every service (and any operator identities asked for)."""
        return {identity: self.ensure(identity) for identity in identities}
