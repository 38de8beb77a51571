"""A self-signed TLS certificate for a first deployment (`vigint cert`)."""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vigint.errors import InvalidInputError

# Browsers and TLS libraries refuse server certificates valid for more than 825 days.
VALID_DAYS = 825
CERT_FILE = "vigint-cert.pem"
KEY_FILE = "vigint-key.pem"


def _subject_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_self_signed(host: str, out_dir: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a self-signed certificate for `host` (name or IP) and its private key (owner-only).

    Returns the certificate and key paths. Raises InvalidInputError if they exist and not `overwrite`.
    """
    cert_path = out_dir / CERT_FILE
    key_path = out_dir / KEY_FILE
    if not overwrite and (cert_path.exists() or key_path.exists()):
        raise InvalidInputError(f"{cert_path} or {key_path} already exists: add --force to replace them")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_subject_name(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
