"""Fixtures every test package shares: real alerts, throwaway TLS certificates, a conn.log made of the real
captures, a free port. Registered for the whole suite by ``tests/conftest.py``."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sensor.alerts.alert import Alert
from sensor.config import default_config
from sensor.replay import replay
from tests.conftest import CAPTURES


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def real_alerts() -> list[Alert]:
    """Alerts of a replay of every capture's conn.log (more than a batch of them)."""
    alerts: list[Alert] = []
    with open(os.devnull, "wb") as sink:
        for conn in sorted(CAPTURES.glob("*/zeek/conn.log")):
            replay([conn], default_config(), sink, on_alert=alerts.append)
    assert len(alerts) >= 8
    return alerts


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t1046 test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = Certificates(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@dataclass(frozen=True)
class ConnLog:
    """conn.log lines of every capture, re-timed to run one after the other from ``start``."""

    header: list[str]
    lines: list[str]

    def header_for(self, opened: float) -> str:
        """The TSV header with a distinct ``#open`` line (Zeek writes one per file)."""
        stamp = datetime.datetime.fromtimestamp(opened, datetime.UTC).strftime("%Y-%m-%d-%H-%M-%S")
        return "".join(f"#open\t{stamp}.{int(opened * 1e6) % 1000000:06d}\n" if line.startswith("#open") else line
                       for line in self.header)


def conn_log(start: float) -> ConnLog:
    header: list[str] = []
    lines: list[str] = []
    offset_to = start
    for conn in sorted(CAPTURES.glob("*/zeek/conn.log")):
        text = conn.read_text().splitlines(keepends=True)
        if not header:
            header = [line for line in text if line.startswith("#") and not line.startswith("#close")]
        rows = [line.split("\t") for line in text if not line.startswith("#")]
        first = min(float(row[0]) for row in rows)
        last = offset_to
        for row in rows:
            ts = float(row[0]) - first + offset_to
            last = max(last, ts)
            lines.append("\t".join([f"{ts:.6f}", *row[1:]]))
        offset_to = last + 5.0
    return ConnLog(header, lines)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM a process this test started and return its exit status; SIGKILL it if it outlives ``timeout``
    (the wait's ``TimeoutExpired`` still fails the test)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
