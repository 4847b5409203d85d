"""How LeadShop starts Chromium: Debian's build, by path, with the flags and environment it needs.

Shared by the Lighthouse and Playwright assessments so both launch the same browser the same
way. Chromium keeps its own trust store and ignores ``SSL_CERT_FILE``; on Linux it also trusts the
CAs in the user's NSS database (``$HOME/.pki/nssdb``). The CAs that ``SSL_CERT_FILE`` adds to the
system's (the demo's local CA, a company's private CA) go into such a database of this process's
own, and Chromium starts with ``HOME`` pointing there (``launch_env``): TLS stays fully verified
(chain, name, expiry) for the same CAs Python trusts.

Why not ``--ignore-certificate-errors-spki-list`` with the CAs' key hashes: Chromium compares them
only with the certificates a server *sends*, and on a match skips verification altogether. A
server sending just its leaf (the demo, most private-CA sites) is refused, and one that appends
the CA's public certificate to a self-signed chain is accepted for any name.
"""

from __future__ import annotations

import atexit
import base64
import os
import re
import shutil
import ssl
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from leadshop.config import Settings
from leadshop.errors import ConfigurationError

# Without the network flags Chromium keeps calling home, which this network refuses.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
)
NSS_TOOL = "certutil"  # Debian package libnss3-tools
NSS_DB = Path(".pki") / "nssdb"  # under HOME; newer Chromiums still prefer it when it exists
NSS_TIMEOUT = 30.0
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.DOTALL
)


def chromium_path(settings: Settings) -> str:
    """The configured Chromium, or a clear error saying how to install it."""
    path = settings.chromium_path
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ConfigurationError(
            f"Chromium not found at {path}: `apt-get install -y chromium`, or set "
            "LEADSHOP_CHROMIUM_PATH"
        )
    return path


def _certificates(bundle: Path) -> list[bytes]:
    """The DER certificates in a PEM bundle; unreadable blocks are skipped, as OpenSSL does."""
    if not bundle.is_file():
        return []
    found = []
    for block in _PEM_CERTIFICATE.findall(bundle.read_bytes()):
        try:
            found.append(base64.b64decode(b"".join(block.split()), validate=True))
        except ValueError:
            continue
    return found


def _extra_cas(extra: Path) -> list[bytes]:
    system = ssl.get_default_verify_paths().openssl_cafile
    known = set(_certificates(Path(system))) if system else set()
    return [der for der in dict.fromkeys(_certificates(extra)) if der not in known]


def _run_nss_tool(tool: str, *args: str, stdin: bytes = b"") -> None:
    try:
        subprocess.run(
            [tool, *args], input=stdin, capture_output=True, check=True, timeout=NSS_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(f"{tool} {args[0]} failed: {exc}") from exc


@lru_cache(maxsize=4)
def _trust_home(extra: str) -> str | None:
    """A HOME whose NSS database trusts the CAs ``extra`` adds; None when it adds none.

    One per process in a private temporary directory, removed at exit: a shared one under /tmp
    could be planted by another user with CAs of their choosing.
    """
    cas = _extra_cas(Path(extra))
    if not cas:
        return None
    tool = shutil.which(NSS_TOOL)
    if tool is None:
        raise ConfigurationError(
            f"SSL_CERT_FILE={extra} adds CAs that Chromium can only trust through NSS: "
            "`apt-get install -y libnss3-tools`"
        )
    home = Path(tempfile.mkdtemp(prefix="leadshop-chromium-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    database = home / NSS_DB
    database.mkdir(parents=True)
    _run_nss_tool(tool, "-N", "-d", f"sql:{database}", "--empty-password")
    for number, der in enumerate(cas, 1):
        name = f"leadshop-extra-ca-{number}"
        _run_nss_tool(tool, "-A", "-d", f"sql:{database}", "-n", name, "-t", "C,,", stdin=der)
    return str(home)


def launch_env() -> dict[str, str]:
    """This process's environment for Chromium, with HOME set to trust what SSL_CERT_FILE adds."""
    env = dict(os.environ)
    extra = env.get("SSL_CERT_FILE")
    home = _trust_home(extra) if extra else None
    if home is not None:
        env["HOME"] = home
    return env


def launch_flags() -> list[str]:
    return list(CHROMIUM_FLAGS)
