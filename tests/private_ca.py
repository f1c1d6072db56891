"""A private certificate authority made in the test: a CA, and a server certificate it signs for 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PrivateCA:
    ca_file: Path  # the CA's certificate (what KEEPWARM_CA_FILE points to)
    certificate: Path  # the server's certificate, for 127.0.0.1 and localhost
    key: Path  # the server's private key

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_private_ca(folder: Path) -> PrivateCA:
    """With the `cryptography` package when it is installed, else with the `openssl` command."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = PrivateCA(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _with_openssl(ca, folder)
    else:
        _with_cryptography(ca)
    return ca


def _with_cryptography(ca: PrivateCA) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer_name, public_key, signing_key, *, authority: bool, names=()):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name).public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True))
        if authority:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True).add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Keepwarm test CA")])
    ca_cert = build("Keepwarm test CA", ca_name, ca_key.public_key(), ca_key, authority=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = build("127.0.0.1", ca_name, key.public_key(), ca_key, authority=False, names=names)
    ca.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))


def _with_openssl(ca: PrivateCA, folder: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("neither the cryptography package nor the openssl command: cannot make a test CA")
    ca_key, request = folder / "ca.key", folder / "server.csr"
    extensions = folder / "server.ext"
    extensions.write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\nbasicConstraints = CA:FALSE\n")
    for argv in (
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=Keepwarm test CA", "-keyout", ca_key, "-out", ca.ca_file],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", ca.key, "-out", request],
        ["x509", "-req", "-in", request, "-CA", ca.ca_file, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
         "-extfile", extensions, "-out", ca.certificate],
    ):
        subprocess.run([openssl, *map(str, argv)], check=True, capture_output=True)
