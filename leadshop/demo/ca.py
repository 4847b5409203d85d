"""A local test certificate authority, so the demo's HTTPS sites verify like real ones.

TLS is always verified in LeadShop; a demo that needed ``verify=False`` would test a code path
production never takes. So the demo signs its server certificate with its own CA, and clients
trust that CA the way Python and curl users trust any private CA: ``SSL_CERT_FILE``. Python's ssl
(and httpx, curl) *replace* the system store with that file rather than extend it, so we write
``trust_bundle`` = system roots + this CA, and point ``SSL_CERT_FILE`` there; public sites keep
verifying in the same process.

Everything is created once in a directory the caller picks and reused while still valid: a new CA
on every run would break any bundle already exported in a shell or handed to a worker.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_DNS_NAME = "localhost"
SERVER_IP = ipaddress.IPv4Address("127.0.0.1")
CA_VALIDITY = dt.timedelta(days=5 * 365)
SERVER_VALIDITY = dt.timedelta(days=397)  # the longest lifetime browsers accept for a leaf
RENEW_BEFORE = dt.timedelta(days=7)  # never hand out a certificate about to expire mid-demo
BACKDATE = dt.timedelta(hours=1)  # tolerate a client clock slightly behind ours
SYSTEM_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Alpine
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL
)


@dataclass(frozen=True)
class DemoCA:
    """Paths of the demo's PKI files; ``trust_bundle`` is what ``SSL_CERT_FILE`` should name."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    trust_bundle: Path

    def server_context(self) -> ssl.SSLContext:
        """The TLS context every demo HTTPS listener wraps its connections with."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert, self.server_key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context equal to what ``SSL_CERT_FILE=trust_bundle`` gives."""
        return ssl.create_default_context(cafile=self.trust_bundle)


def ensure_demo_ca(directory: Path, system_bundle: Path | None = None) -> DemoCA:
    """Create (or reuse, when still valid) the CA, the server certificate and the trust bundle.

    ``system_bundle`` defaults to the distribution's CA bundle; the trust bundle is rewritten on
    every call so it follows system updates. A lock file serialises concurrent callers (parallel
    test sessions, several workers), which could otherwise pair a certificate with another
    caller's CA.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = DemoCA(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca-key.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        trust_bundle=directory / "trust-bundle.pem",
    )
    with _locked(directory / ".lock"):
        now = dt.datetime.now(dt.UTC)
        if not _reusable(ca, now):
            _issue(ca, now)
        system = system_bundle or _system_bundle()
        roots = system.read_bytes().rstrip(b"\n") + b"\n" if system else b""
        _write(ca.trust_bundle, roots + ca.ca_cert.read_bytes(), private=False)
    return ca


def _system_bundle() -> Path | None:
    candidates = [*SYSTEM_BUNDLES, Path(ssl.get_default_verify_paths().openssl_cafile)]
    return next((path for path in candidates if path.is_file()), None)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reusable(ca: DemoCA, now: dt.datetime) -> bool:
    """Whether the files on disk form a chain we can keep serving for at least RENEW_BEFORE."""
    try:
        root = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
        leaf = x509.load_pem_x509_certificate(ca.server_cert.read_bytes())
        root_key = serialization.load_pem_private_key(ca.ca_key.read_bytes(), password=None)
        leaf_key = serialization.load_pem_private_key(ca.server_key.read_bytes(), password=None)
        leaf.verify_directly_issued_by(root)
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False  # anything short of a provable chain means "issue a new one"
    return (
        all(
            c.not_valid_before_utc <= now < c.not_valid_after_utc - RENEW_BEFORE
            for c in (root, leaf)
        )
        and root_key.public_key() == root.public_key()
        and leaf_key.public_key() == leaf.public_key()
        and SERVER_DNS_NAME in names.get_values_for_type(x509.DNSName)
        and SERVER_IP in names.get_values_for_type(x509.IPAddress)
    )


def _issue(ca: DemoCA, now: dt.datetime) -> None:
    """A fresh EC P-256 CA and a localhost/127.0.0.1 server certificate signed by it."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LeadShop Assessor demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, "LeadShop Demo Test CA"),
        ]
    )
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_DNS_NAME)]))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(SERVER_DNS_NAME), x509.IPAddress(SERVER_IP)]),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(ca.ca_key, _private_pem(root_key), private=True)
    _write(ca.server_key, _private_pem(leaf_key), private=True)
    _write(ca.ca_cert, root.public_bytes(pem), private=False)
    _write(ca.server_cert, leaf.public_bytes(pem), private=False)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; an EC server key only signs handshakes (no key encipherment)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Atomic replace, so a reader never sees half a PEM; keys are created owner-only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
