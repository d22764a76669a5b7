"""The hierarchy's CA and its server certificates (`updatesync.security.pki`), read back with
`cryptography`: what a TLS client of the hierarchy will check."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from updatesync.security.pki import (
    TlsError,
    check_server_files,
    client_context,
    create_ca,
    issue_certificate,
    server_files,
)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_ca_is_a_private_folder_with_its_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    cert = create_ca(tmp_path / "pki")
    assert cert == tmp_path / "pki" / "ca.pem"
    assert mode(tmp_path / "pki") == 0o700
    assert mode(tmp_path / "pki" / "ca.key") == 0o600
    ca = x509.load_pem_x509_certificate(cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(FileExistsError, match=r"ca\.pem exists"):
        create_ca(tmp_path / "pki")


def test_a_server_certificate_has_its_names_server_auth_and_the_cas_signature(
    tmp_path: Path,
) -> None:
    ca_path = create_ca(tmp_path)
    cert_path, key_path = issue_certificate(tmp_path, "PS1Site.Contoso.com", ["127.0.0.1", "::1"])
    assert (cert_path, key_path) == server_files(tmp_path, "ps1site.contoso.com")
    assert mode(cert_path) == mode(key_path) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["ps1site.contoso.com"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_path.read_bytes()))
    check_server_files(cert_path, key_path)  # a server can load them


def test_issuing_never_overwrites_and_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match="holds no CA; create one with `updatesync pki init"):
        issue_certificate(tmp_path, "a.contoso.com")
    create_ca(tmp_path)
    issue_certificate(tmp_path, "a.contoso.com")
    before = (tmp_path / "a.contoso.com.pem").read_bytes()
    with pytest.raises(FileExistsError, match=r"a\.contoso\.com\.pem exists"):
        issue_certificate(tmp_path, "a.contoso.com")
    assert (tmp_path / "a.contoso.com.pem").read_bytes() == before
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        issue_certificate(tmp_path, "b.contoso.com", ["1.2.3"])
    with pytest.raises(ValueError, match="is not a host name"):
        issue_certificate(tmp_path, "../evil")


def test_a_client_context_trusts_only_the_bundle_and_checks_names(tmp_path: Path) -> None:
    context = client_context(create_ca(tmp_path))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1  # not the system's store


def test_missing_or_unusable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"the CA bundle .*ca.pem \(\[hierarchy.tls\] ca\)"):
        client_context(tmp_path / "ca.pem", "[hierarchy.tls] ca")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match="holds no usable certificate"):
        client_context(tmp_path / "junk.pem")
    create_ca(tmp_path / "pki")
    cert, _ = issue_certificate(tmp_path / "pki", "a.contoso.com")
    _, other_key = issue_certificate(tmp_path / "pki", "b.contoso.com")
    with pytest.raises(TlsError, match="cannot be used"):
        check_server_files(cert, other_key, where="cert of the SUP")
    with pytest.raises(TlsError, match=r"the key .*nothing.key \(the SUP\) does not exist"):
        check_server_files(cert, tmp_path / "nothing.key", where="the SUP", host="a")
