"""The hierarchy's own certificate authority, its server certificates, and the TLS contexts
the roles serve and call with.

Every site and software update point of a hierarchy serves HTTPS with a certificate issued
by the hierarchy's CA, and every call between roles verifies the peer against that CA:

- `create_ca(folder)`: a new CA in `folder` (0700): `ca.pem` (the bundle every host gets a
  copy of) and `ca.key` (0600, kept where certificates are issued);
- `issue_certificate(folder, host, ips)`: `<folder>/<host>.pem` and `<host>.key` (0600), a
  server certificate for `host` (DNS name, plus any IP addresses the role is reached at)
  with the serverAuth extended key usage, signed by the folder's CA;
- `client_context(ca_file)`: an `ssl.SSLContext` that trusts only that CA, checks host names
  and refuses TLS older than 1.2; `public_context()` the system's trust store, for an
  upstream on the public internet (Microsoft Update);
- `check_server_files(cert, key)`: a certificate and key a server can load, or `TlsError`.

Every private key (`ca.key`, a server's key) is read through `read_private_file`: a key file
group or others may read is refused (`TlsError` naming it and `chmod 600`); certificates and
the CA bundle are public.

Keys are ECDSA P-256: small, fast to make, and accepted by every TLS 1.2+ client.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from updatesync.security.private_files import (
    InsecureFileError,
    create_private_file,
    private_dir,
    read_private_file,
)

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CA_DAYS = 3650
SERVER_DAYS = 825
"""How long a server certificate is valid (the most browsers and TLS libraries accept)."""

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "TlsError",
    "check_server_files",
    "client_context",
    "create_ca",
    "issue_certificate",
    "public_context",
    "server_files",
]


class TlsError(Exception):
    """A CA, certificate or key is missing or unusable; the message names the file and what
    to do."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _private_folder(folder: Path) -> None:
    private_dir(folder)
    folder.chmod(0o700)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(folder: str | os.PathLike[str], name: str = "updatesync hierarchy CA") -> Path:
    """A new certificate authority in `folder` (created 0700): `ca.pem` and `ca.key` (0600).
    Refuses (FileExistsError naming the file) when the folder already holds one."""
    where = Path(folder)
    _private_folder(where)
    cert_path, key_path = where / CA_CERT, where / CA_KEY
    for path in (cert_path, key_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; a folder holds one CA (remove it to replace)")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    create_private_file(key_path, _key_bytes(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(
            read_private_file(key_path, "the CA's key"), password=None
        )
    except InsecureFileError as exc:
        raise TlsError(str(exc)) from None
    except FileNotFoundError as exc:
        raise TlsError(
            f"{exc.filename} does not exist: {folder} holds no CA; create one with "
            f"`updatesync pki init {folder}`"
        ) from None
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read the CA in {folder}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{key_path} is not a key made by `updatesync pki init`")
    return cert, key


def server_files(folder: str | os.PathLike[str], host: str) -> tuple[Path, Path]:
    """Where the certificate and key of `host` are kept: `<folder>/<host>.pem`, `.key`."""
    name = host.strip().lower()
    return Path(folder) / f"{name}.pem", Path(folder) / f"{name}.key"


def issue_certificate(
    folder: str | os.PathLike[str],
    host: str,
    ips: Iterable[str] = (),
    *,
    days: int = SERVER_DAYS,
    file_name: str | None = None,
) -> tuple[Path, Path]:
    """A server certificate for `host` signed by the CA in `folder`, valid for the DNS name
    `host` and each IP address in `ips`, with the serverAuth extended key usage; written to
    `<folder>/<host>.pem` and `<host>.key` (0600), or `<file_name>.pem`/`.key` (the web
    console's `console`). Refuses to overwrite (FileExistsError), `TlsError` when the folder
    holds no CA, ValueError for a bad host or IP address."""
    where = Path(folder)
    name = host.strip().lower()
    if not name or "/" in name or name.startswith(".") or any(c.isspace() for c in name):
        raise ValueError(f"{host!r} is not a host name; give one such as ps1site.contoso.com")
    addresses = [ipaddress.ip_address(ip.strip()) for ip in ips]
    cert_path, key_path = server_files(where, file_name or name)
    for path in (cert_path, key_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; remove it first to issue a new certificate")
    ca_cert, ca_key = _load_ca(where)
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    alt_names += [x509.IPAddress(address) for address in addresses]
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    create_private_file(key_path, _key_bytes(key))
    try:
        create_private_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except BaseException:
        key_path.unlink(missing_ok=True)
        raise
    return cert_path, key_path


def _readable(path: Path, what: str, where: str, fix: str, *, private: bool = False) -> None:
    """`path` can be read, or `TlsError` saying why; a `private` file (a key) is read as
    every key is (`read_private_file`): refused when group or others may read it."""
    try:
        if private:
            read_private_file(path, what, where=where)
        else:
            with path.open("rb") as stream:
                stream.read(1)
    except InsecureFileError as exc:
        raise TlsError(str(exc)) from None
    except FileNotFoundError:
        raise TlsError(f"{what} {path} ({where}) does not exist; {fix}") from None
    except OSError as exc:
        raise TlsError(f"cannot read {what} {path} ({where}): {exc.strerror}; {fix}") from None


def client_context(ca_file: str | os.PathLike[str], where: str = "the CA bundle") -> ssl.SSLContext:
    """A client context trusting only the CAs in `ca_file`, checking host names, TLS 1.2 or
    later. `where` names the setting that gave the file, for the error."""
    path = Path(ca_file)
    fix = "create the hierarchy's CA with `updatesync pki init DIR` and name its ca.pem"
    _readable(path, "the CA bundle", where, fix)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks host names; no system CAs
    try:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(
            f"the CA bundle {path} ({where}) holds no usable certificate: {exc}; {fix}"
        ) from None
    return context


def public_context() -> ssl.SSLContext:
    """The system's trust store, for an upstream on the public internet."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_server_files(
    cert: str | os.PathLike[str],
    key: str | os.PathLike[str],
    *,
    where: str = "the hierarchy file",
    host: str = "HOST",
    folder: Path | None = None,
) -> None:
    """The certificate and key a server would load: readable and matching, the key readable
    by its owner only (0600), or `TlsError` naming the file, the setting (`where`) and what
    to do: how to get one (`folder`: where the CA that issues it is, when known), or
    `chmod 600` for a key group or others may read."""
    fix = (
        f"issue one with `updatesync pki issue {folder} --host {host}`"
        if folder is not None
        else f"issue one with `updatesync pki issue DIR --host {host}` (DIR: the folder of the "
        "hierarchy's CA) and copy it there, or name another file"
    )
    cert_path, key_path = Path(cert), Path(key)
    _readable(cert_path, "the certificate", where, fix)
    _readable(key_path, "the key", where, fix, private=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert_path), str(key_path))
    except (ssl.SSLError, ValueError) as exc:
        raise TlsError(
            f"the certificate {cert_path} and key {key_path} ({where}) cannot be used: "
            f"{exc.args[-1] if exc.args else exc}; {fix}"
        ) from None
