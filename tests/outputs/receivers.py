"""Real receivers for the sink tests: Debian's rsyslogd (TCP, TLS, RELP, UDP) that a test stops and starts
again mid-stream, and a scripted HTTP server on loopback that answers as Splunk HEC, ``_bulk`` or a
webhook does, failures included."""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fixtures import Certificates
from tests.waiting import wait_for


def _rsyslogd() -> str:
    found = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)
    if found is None:
        pytest.skip("rsyslogd is not installed (apt-get install rsyslog rsyslog-openssl rsyslog-relp)")
    return found


def _module(name: str) -> None:
    if not list(Path("/usr/lib").glob(f"*/rsyslog/{name}.so")):
        pytest.skip(f"rsyslog's {name} is not installed (apt-get install rsyslog-openssl rsyslog-relp)")


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed client certificate and its key (RELP over TLS needs one: imrelp asks every client)."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t1046-sensor test client")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "client.pem", directory / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Rsyslog:
    """rsyslogd in the foreground with its own config, work directory and pid file, on a loopback port; it
    writes ``version|app|msgid|structured-data|msg`` lines to ``output``. Stopped by its PID only."""

    def __init__(self, directory: Path, protocol: str, tls: Certificates | None = None,
                 max_message_size: int | None = None) -> None:
        self._binary = _rsyslogd()
        self.max_message_size = max_message_size
        """rsyslog's ``maxMessageSize`` (its default is 8 KiB: a longer message is cut by the receiver)."""
        _module({"tcp": "imtcp", "tls": "lmnsd_ossl", "relp": "imrelp", "udp": "imudp"}[protocol])
        self.directory = directory
        self.protocol = protocol
        self._tls = tls
        self.tls = tls is not None
        self.client: tuple[Path, Path] | None = None
        """The client certificate and key a RELP-over-TLS receiver trusts."""
        if protocol == "relp" and tls is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self.client = client_certificate(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "work").mkdir(exist_ok=True)
        self.output = directory / "received.log"
        self.port = 0 if protocol in ("tcp", "tls") else _udp_port() if protocol == "udp" else _tcp_port()
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _config(self) -> str:
        work = self.directory / "work"
        port_file = self.directory / "port"
        driver = ""
        if self.protocol == "tls":
            assert self._tls is not None
            driver = (f' defaultNetstreamDriver="ossl" defaultNetstreamDriverCAFile="{self._tls.ca}"'
                      f' defaultNetstreamDriverCertFile="{self._tls.cert}"'
                      f' defaultNetstreamDriverKeyFile="{self._tls.key}"')
        if self.protocol in ("tcp", "tls"):
            stream = (' StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"'
                      if self.protocol == "tls" else "")
            inputs = (f'module(load="imtcp"{stream})\n'
                      f'input(type="imtcp" address="127.0.0.1" port="{self.port}" '
                      f'listenPortFileName="{port_file}")\n')
        elif self.protocol == "relp":
            tls = ""
            if self._tls is not None and self.client is not None:
                tls = (f' tls="on" tls.authMode="certvalid" tls.caCert="{self.client[0]}"'
                       f' tls.myCert="{self._tls.cert}" tls.myPrivKey="{self._tls.key}"')
            inputs = f'module(load="imrelp")\ninput(type="imrelp" address="127.0.0.1" port="{self.port}"{tls})\n'
        else:
            inputs = f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{self.port}")\n'
        size = f' maxMessageSize="{self.max_message_size}"' if self.max_message_size else ""
        return (f'global(workDirectory="{work}"{driver}{size})\n' + inputs +
                'template(name="fields" type="string" '
                'string="%protocol-version%|%app-name%|%msgid%|%structured-data%|%msg%\\n")\n'
                f'action(type="omfile" file="{self.output}" template="fields")\n')

    def start(self) -> None:
        """Start rsyslogd and return once it listens (its port file, or its pid file and socket)."""
        port_file = self.directory / "port"
        port_file.unlink(missing_ok=True)
        pid_file = self.directory / "rsyslogd.pid"
        pid_file.unlink(missing_ok=True)
        (self.directory / "rsyslog.conf").write_text(self._config())
        stderr = (self.directory / f"stderr.{self.starts}").open("wb")
        self._process = subprocess.Popen([self._binary, "-n", "-f", str(self.directory / "rsyslog.conf"),
                                          "-i", str(pid_file)], stdout=subprocess.DEVNULL, stderr=stderr)
        stderr.close()
        self.starts += 1
        process = self._process

        def listening() -> bool:
            if process.poll() is not None:
                pytest.fail(f"rsyslogd exited: {(self.directory / f'stderr.{self.starts - 1}').read_text()}")
            if self.port == 0:  # rsyslog picked it and writes it to its port file
                text = port_file.read_text().strip() if port_file.exists() else ""
                if not text.isdigit():
                    return False
                self.port = int(text)
                return True
            if self.protocol == "udp":
                return pid_file.exists() and _udp_bound(self.port)
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 30, f"rsyslogd ({self.protocol}) to listen")

    def stop(self) -> None:
        """An orderly stop (SIGTERM), as `systemctl restart rsyslog` does; wait for it to exit."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGTERM)
            self._process.wait(30)
        self._process = None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines() if self.output.exists() else []


def _udp_bound(port: int) -> bool:
    """True when something is bound to UDP ``port`` on 127.0.0.1 (from /proc/net/udp)."""
    wanted = f"0100007F:{port:04X}"
    return any(line.split()[1] == wanted for line in Path("/proc/net/udp").read_text().splitlines()[1:])


# -- HTTP ------------------------------------------------------------------------------------------------

Answer = tuple[int, bytes]
"""An HTTP status and body."""


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    """Which TCP connection carried it (a number per accepted connection)."""


@dataclass
class Script:
    """What the receiver answers: ``answer(request)`` decides; everything it was sent is kept."""

    answer: Callable[[Request], Answer | None]
    """Returns the status and body, or ``None`` to hold the request until ``release`` is set (a timeout)."""
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpReceiver

    def setup(self) -> None:
        super().setup()
        with self.server.script.lock:
            self.server.connections += 1
            self.number = self.server.connections

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = Request(self.path, dict(self.headers), body, self.number)
        script = self.server.script
        with script.lock:
            script.requests.append(request)
        answer = script.answer(request)
        if answer is None:
            script.release.wait(60)
            self.close_connection = True
            return
        status, payload = answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class HttpReceiver(ThreadingHTTPServer):
    """A real HTTP/1.1 server with keep-alive on 127.0.0.1, port 0, answering by its script; HTTPS when given
    certificates."""

    daemon_threads = True

    def __init__(self, script: Script, tls: Certificates | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scheme = "http"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls.cert, tls.key)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self.script = script
        self.connections = 0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_port}"

    def close(self) -> None:
        self.script.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(10)
