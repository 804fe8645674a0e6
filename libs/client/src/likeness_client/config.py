"""Where the mesh is and who the client is: service addresses and the mTLS identity files.

The identity is a certificate, its key and the mesh CA bundle, as PEM files (an operator's
`spiffe://likeness/operator/<name>` certificate). Found, in order: explicit paths; the environment
(`LIKENESS_CLIENT_CERT`, `LIKENESS_CLIENT_KEY`, `LIKENESS_CLIENT_CA`, or `LIKENESS_CLIENT_TLS_DIR` holding
`tls.crt`, `tls.key`, `ca.crt`); the development identity `make run` writes to `.run/tls/operator-dev`
(looked for from the working folder upwards and in the checkout this package lives in).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

SPIFFE_PREFIX = "spiffe://likeness/"
SERVICES = ("gateway", "ingestion", "faces", "render", "billing", "privacy")
# `make run`'s fixed gRPC ports (scripts/mesh.py).
DEV_PORTS = {"gateway": 50050, "ingestion": 50051, "faces": 50052, "render": 50053, "billing": 50054, "privacy": 50055}
DEV_IDENTITY_FOLDER = Path(".run") / "tls" / "operator-dev"


class ConfigError(RuntimeError):
    """The client cannot be set up (no identity found, unreadable files): the message says what to do."""


@dataclass(frozen=True)
class Identity:
    """An mTLS identity: certificate chain, private key and trusted CA bundle files."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def from_dir(cls, folder: str | Path) -> Identity:
        """A folder in the cert-manager layout (`tls.crt`, `tls.key`, `ca.crt`)."""
        folder = Path(folder)
        return cls(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")

    @classmethod
    def discover(
        cls,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ca: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        start: Path | None = None,
    ) -> Identity:
        """The identity to use (see the module docstring for the order); ConfigError when there is none."""
        env = os.environ if env is None else env
        given = [cert, key, ca]
        if any(given):
            if not all(given):
                raise ConfigError("give all three of --cert, --key and --ca (or none, to use the environment or `make run`'s identity)")
            return cls(Path(str(cert)), Path(str(key)), Path(str(ca))).checked()
        env_files = [env.get("LIKENESS_CLIENT_CERT"), env.get("LIKENESS_CLIENT_KEY"), env.get("LIKENESS_CLIENT_CA")]
        if any(env_files):
            if not all(env_files):
                raise ConfigError("set all three of LIKENESS_CLIENT_CERT, LIKENESS_CLIENT_KEY and LIKENESS_CLIENT_CA")
            return cls(*(Path(str(p)) for p in env_files)).checked()
        if env.get("LIKENESS_CLIENT_TLS_DIR"):
            return cls.from_dir(env["LIKENESS_CLIENT_TLS_DIR"]).checked()
        for folder in _dev_candidates(start or Path.cwd()):
            if (folder / "tls.crt").is_file():
                return cls.from_dir(folder).checked()
        raise ConfigError(
            "no client identity: pass --cert/--key/--ca, set LIKENESS_CLIENT_TLS_DIR (a folder with tls.crt, tls.key, ca.crt), "
            "or start the development mesh with `make run` (it writes .run/tls/operator-dev)"
        )

    @property
    def run_dir(self) -> Path | None:
        """The `make run` folder this identity lies in (`<run>/tls/operator-<name>/tls.crt`), if it does."""
        folder = self.cert.parent
        if folder.name.startswith("operator-") and folder.parent.name == "tls":
            return folder.parent.parent
        return None

    def checked(self) -> Identity:
        for path in (self.cert, self.key, self.ca):
            if not path.is_file():
                raise ConfigError(f"identity file {path} does not exist")
        return self

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(certificate chain, private key, CA bundle) as PEM bytes."""
        try:
            return self.cert.read_bytes(), self.key.read_bytes(), self.ca.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the identity files: {exc}") from None

    @property
    def name(self) -> str:
        """The mesh identity in the certificate (`operator/alice`), '' when it names none."""
        try:
            cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (OSError, ValueError, x509.ExtensionNotFound):
            return ""
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(SPIFFE_PREFIX):
                return uri[len(SPIFFE_PREFIX) :]
        return ""

    @property
    def roles(self) -> frozenset[str]:
        """The operator roles the certificate carries (Subject OU `likeness-role:<role>`)."""
        try:
            cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        except (OSError, ValueError):
            return frozenset()
        units = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
        return frozenset(u.removeprefix("likeness-role:") for u in units if u.startswith("likeness-role:"))


def _dev_candidates(start: Path) -> list[Path]:
    here = start.resolve()
    found = [parent / DEV_IDENTITY_FOLDER for parent in (here, *here.parents)]
    # The checkout this package is in (libs/client/src/likeness_client/config.py -> the repository root).
    checkout = Path(__file__).resolve().parents[4]
    found.append(checkout / DEV_IDENTITY_FOLDER)
    return found


@dataclass(frozen=True)
class Endpoints:
    """gRPC addresses (`host:port`) of the services a client calls."""

    addresses: dict[str, str] = field(default_factory=lambda: {name: f"127.0.0.1:{port}" for name, port in DEV_PORTS.items()})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, run_dir: Path | None = None, **overrides: str | None) -> Endpoints:
        """`make run`'s addresses (its fixed ports, or those in `<run_dir>/endpoints.json` when given), replaced by
        `LIKENESS_<SERVICE>_ADDR` and then by non-empty overrides (`render="host:port"`)."""
        env = os.environ if env is None else env
        addresses = cls().addresses
        if run_dir is not None and (run_dir / "endpoints.json").is_file():
            try:
                written = json.loads((run_dir / "endpoints.json").read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read {run_dir / 'endpoints.json'}: {exc}") from None
            addresses.update({k: str(v) for k, v in written.items() if k in addresses})
        for name in SERVICES:
            if env.get(f"LIKENESS_{name.upper()}_ADDR"):
                addresses[name] = env[f"LIKENESS_{name.upper()}_ADDR"]
        for name, value in overrides.items():
            if name not in addresses:
                raise ConfigError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
            if value:
                addresses[name] = value
        return cls(addresses)

    def __getitem__(self, service: str) -> str:
        return self.addresses[service]
