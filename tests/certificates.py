"""
Self-signed certificates for end-to-end tests over TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def escapeEndpointValue(value: str) -> str:
    """
    Escape a value for a Twisted endpoint description, where C{:} separates
    arguments.
    """
    return value.replace("\\", "\\\\").replace(":", "\\:")


def writeSelfSignedCertificate(directory: Path) -> tuple[Path, Path]:
    """
    Write a key and a self-signed certificate for 127.0.0.1 and localhost.

    @return: The paths of the PEM key and the PEM certificate.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        # Marked as a CA so that it can serve as its own trust root.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPath = directory / "key.pem"
    certificatePath = directory / "cert.pem"
    keyPath.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certificatePath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return keyPath, certificatePath
