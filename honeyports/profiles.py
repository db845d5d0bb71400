"""Service profiles: what a honeyport says first and how it answers one request before it closes.

A profile is plausible enough for a scanner's version detection (``nmap -sV`` names most of them) and no
more: it never parses past the first request, never authenticates, and never keeps a session. Each
profile is a small class whose behaviour is three named methods a subclass overrides:

* :attr:`Profile.banner` — bytes sent as soon as the connection is accepted (may be empty);
* :meth:`Profile.is_complete` — whether the bytes received so far make a first request;
* :meth:`Profile.answer` — the reply to that first request (then the connection is closed);
* :meth:`Profile.answer_datagram` — the reply to a UDP datagram; the listener truncates it to the
  datagram's own length, so a UDP honeyport can never amplify (see :func:`datagram_reply`).

Every method is pure: bytes in, bytes out, no clock and no I/O, so garbage, empty and oversize input is
table-testable.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_CRLF = b"\r\n"


class Profile:
    """The generic profile: silent, answers nothing, closes after the first request."""

    name = "generic"
    banner = b""

    def is_complete(self, received: bytes) -> bool:
        """True when ``received`` (the bytes so far, capped by the listener) is a whole first request."""
        return bool(received)

    def answer(self, request: bytes) -> bytes:
        """The reply to the first request; the connection is closed after it."""
        return b""

    def answer_datagram(self, datagram: bytes) -> bytes:
        """The reply to one UDP datagram; empty means silence."""
        return b""


class LineProfile(Profile):
    """A text protocol whose first request is one line ending in LF (SMTP, FTP, Telnet, SSH idents)."""

    def is_complete(self, received: bytes) -> bool:
        """A line has arrived."""
        return b"\n" in received


class SshProfile(LineProfile):
    """SSH (RFC 4253 §4.2): the server's identification string; the client's own ends the exchange.

    Nothing is answered to the client's identification: a real server would start the key exchange
    (RFC 4253 §7), which a scanner's version probe never waits for.
    """

    name = "ssh"
    banner = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"

    def answer(self, request: bytes) -> bytes:
        """Malformed identifications get OpenSSH's own complaint; well-formed ones get silence."""
        return b"" if request.startswith(b"SSH-") else b"Invalid SSH identification string.\r\n"


class HttpProfile(Profile):
    """HTTP/1.1 (RFC 9112): a request head ends at an empty line; any request gets a small nginx page."""

    name = "http"
    server = b"nginx/1.18.0 (Ubuntu)"
    _METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PATCH")

    def is_complete(self, received: bytes) -> bool:
        """The head is complete at the first empty line (RFC 9112 §2.1)."""
        return b"\r\n\r\n" in received or b"\n\n" in received

    def answer(self, request: bytes) -> bytes:
        """``200`` with a default page for a request line with a known method, ``400`` for anything else."""
        method, _, _ = request.partition(b" ")
        if method in self._METHODS:
            status = b"200 OK"
            body = (b"<html><head><title>Welcome to nginx!</title></head>"
                    b"<body><h1>Welcome to nginx!</h1></body></html>\n")
        else:
            status = b"400 Bad Request"
            body = (b"<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request"
                    b"</h1></center>\r\n<hr><center>nginx/1.18.0 (Ubuntu)</center>\r\n</body>\r\n</html>\r\n")
        head = (b"HTTP/1.1 " + status + _CRLF + b"Server: " + self.server + _CRLF
                + b"Content-Type: text/html" + _CRLF + b"Content-Length: " + str(len(body)).encode() + _CRLF
                + b"Connection: close" + _CRLF + _CRLF)
        return head if method == b"HEAD" else head + body


class TelnetProfile(Profile):
    """Telnet (RFC 854): the option negotiation of Linux telnetd (RFC 1091 terminal type, RFC 1073 window
    size, RFC 1079 terminal speed, RFC 1572 environment), then a failed login to whatever comes back."""

    name = "telnet"
    IAC, DO = 0xFF, 0xFD
    banner = bytes((IAC, DO, 0x18, IAC, DO, 0x20, IAC, DO, 0x23, IAC, DO, 0x27))

    def answer(self, request: bytes) -> bytes:
        """A login prompt's refusal; the option replies in ``request`` are not interpreted."""
        return b"\r\nLogin incorrect\r\n"


class FtpProfile(LineProfile):
    """FTP (RFC 959): vsftpd's greeting; every first command is refused until a login that never comes."""

    name = "ftp"
    banner = b"220 (vsFTPd 3.0.5)\r\n"

    def answer(self, request: bytes) -> bytes:
        """``331`` to USER, ``530`` (RFC 959 §4.2) to anything else."""
        if request[:5].upper() == b"USER ":
            return b"331 Please specify the password.\r\n"
        return b"530 Please login with USER and PASS.\r\n"


class SmtpProfile(LineProfile):
    """SMTP (RFC 5321): Postfix's greeting; EHLO/HELO is answered (§4.1.1.1), anything else refused."""

    name = "smtp"
    hostname = b"mail.corp.internal"
    banner = b"220 " + hostname + b" ESMTP Postfix (Ubuntu)\r\n"

    def answer(self, request: bytes) -> bytes:
        """EHLO's extension list, HELO's greeting, or ``502`` (RFC 5321 §4.2.4)."""
        verb = request[:4].upper()
        if verb == b"EHLO":
            return (b"250-" + self.hostname + b"\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
                    b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        if verb == b"HELO":
            return b"250 " + self.hostname + b"\r\n"
        return b"502 5.5.2 Error: command not recognized\r\n"


_MYSQL_VERSION = b"8.0.36-0ubuntu0.22.04.1"
_MYSQL_SALT = b"\x1a\x2b\x3c\x4d\x5e\x6f\x70\x11\x22\x33\x44\x55\x66\x77\x01\x02\x03\x04\x05\x06"


def _mysql_packet(sequence: int, payload: bytes) -> bytes:
    """One MySQL protocol packet: 3-byte little-endian length, sequence id, payload."""
    return struct.pack("<I", len(payload))[:3] + bytes((sequence & 0xFF,)) + payload


class MysqlProfile(Profile):
    """MySQL client/server protocol: the Handshake v10 packet, then ER_ACCESS_DENIED to the login.

    Packets are framed as 3-byte little-endian length plus a sequence id (MySQL internals manual,
    "Protocol::Packet"); the greeting advertises ``caching_sha2_password`` like MySQL 8.0.
    """

    name = "mysql"

    banner = _mysql_packet(0, b"\x0a" + _MYSQL_VERSION + b"\0" + struct.pack("<I", 8) + _MYSQL_SALT[:8] + b"\0"
                           + struct.pack("<HBHH", 0xFFFF, 0xFF, 0x0002, 0xDFFF) + bytes((len(_MYSQL_SALT) + 1,))
                           + b"\0" * 10 + _MYSQL_SALT[8:] + b"\0" + b"caching_sha2_password\0")
    """Handshake v10: protocol 10, version, thread id, salt, capabilities, charset, status, plugin."""

    def answer(self, request: bytes) -> bytes:
        """ERR packet 1045 (ER_ACCESS_DENIED_ERROR), sequenced after the client's packet."""
        sequence = request[3] + 1 if len(request) >= 4 else 1
        message = b"Access denied for user 'root'@'localhost' (using password: YES)"
        return _mysql_packet(sequence, b"\xff" + struct.pack("<H", 1045) + b"#28000" + message)


class RedisProfile(LineProfile):
    """Redis (RESP, the Redis serialization protocol): INFO and PING answered, other commands refused."""

    name = "redis"
    _INFO = (b"# Server\r\nredis_version:6.0.16\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"
             b"os:Linux 5.15.0-91-generic x86_64\r\narch_bits:64\r\ntcp_port:6379\r\n")

    def answer(self, request: bytes) -> bytes:
        """A bulk-string INFO reply, ``+PONG``, or an ``-ERR`` naming the first word received."""
        words = [w for w in request.replace(b"\r", b" ").replace(b"\n", b" ").split(b" ")
                 if w and w[:1] not in (b"*", b"$")]
        command = words[0].lower() if words else b""
        if command == b"info":
            return b"$" + str(len(self._INFO)).encode() + _CRLF + self._INFO + _CRLF
        if command == b"ping":
            return b"+PONG\r\n"
        shown = bytes(c for c in command[:32] if 0x20 < c < 0x7F).decode("ascii")
        return f"-ERR unknown command '{shown}', with args beginning with: \r\n".encode("ascii")


class RdpProfile(Profile):
    """RDP (MS-RDPBCGR §2.2.1.2): an X.224 Connection Confirm (ITU-T X.224, in TPKT, RFC 1006) carrying
    an RDP Negotiation Response that selects CredSSP, as Windows does."""

    name = "rdp"
    _CONFIRM = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00"

    def is_complete(self, received: bytes) -> bool:
        """A TPKT (version 3) is complete at its own length; anything else is judged at once."""
        if len(received) >= 4 and received[0] == 3:
            return len(received) >= int.from_bytes(received[2:4], "big")
        return bool(received)

    def answer(self, request: bytes) -> bytes:
        """The Connection Confirm to an X.224 Connection Request (TPDU code 0xE0); nothing to the rest."""
        if len(request) >= 6 and request[0] == 3 and request[5] & 0xF0 == 0xE0:
            return self._CONFIRM
        return b""


class VncProfile(Profile):
    """VNC, the Remote Framebuffer protocol (RFC 6143 §7.1): version 3.8, then a security failure."""

    name = "vnc"
    banner = b"RFB 003.008\n"

    def is_complete(self, received: bytes) -> bool:
        """The client's ProtocolVersion is 12 bytes (RFC 6143 §7.1.1)."""
        return len(received) >= 12

    def answer(self, request: bytes) -> bytes:
        """Zero security types and a reason string: the failure form of RFC 6143 §7.1.2."""
        reason = b"Too many security failures"
        return b"\x00" + struct.pack(">I", len(reason)) + reason


class SmbProfile(Profile):
    """SMB over TCP 445 (RFC 1002 session framing, MS-SMB2 §2.1): the NT LM 0.12 negotiate response of
    MS-CIFS §2.2.4.52.2 to an SMB1 negotiate; SMB2 negotiates are answered in SMB1, as older Windows did."""

    name = "smb"
    _DIALECT = b"NT LM 0.12"

    def is_complete(self, received: bytes) -> bool:
        """A NetBIOS session message (type 0) is complete at its 17-bit length; anything else at once."""
        if len(received) >= 4 and received[0] == 0:
            return len(received) >= 4 + (int.from_bytes(received[1:4], "big") & 0x1FFFF)
        return bool(received)

    def dialect_index(self, request: bytes) -> int | None:
        """Index of ``NT LM 0.12`` in an SMB1 negotiate request's dialect list, or None."""
        if len(request) < 39 or request[4:8] != b"\xffSMB" or request[8] != 0x72:
            return None
        dialects = request[39:].split(b"\0")
        names = [d[1:] for d in dialects if d[:1] == b"\x02"]
        return names.index(self._DIALECT) if self._DIALECT in names else None

    def answer(self, request: bytes) -> bytes:
        """The negotiate response, or nothing when no dialect is acceptable."""
        index = self.dialect_index(request)
        if index is None:
            return b""
        header = (b"\xffSMB\x72" + b"\0" * 4 + b"\x88" + struct.pack("<H", 0x4001) + b"\0" * 14
                  + request[30:32] + b"\0\0" + request[34:36])
        domain = "WORKGROUP\0".encode("utf-16-le")
        challenge = b"\x11\x22\x33\x44\x55\x66\x77\x88"
        words = (struct.pack("<H", index) + b"\x03" + struct.pack("<HH", 10, 1) + struct.pack("<II", 4356, 65536)
                 + b"\0" * 4 + struct.pack("<I", 0x0000E3FD) + b"\0" * 8 + struct.pack("<h", 0) + bytes((8,)))
        body = b"\x11" + words + struct.pack("<H", len(challenge) + len(domain)) + challenge + domain
        message = header + body
        return b"\0" + len(message).to_bytes(3, "big") + message


class DnsProfile(Profile):
    """DNS (RFC 1035 §4.1.1): every query is REFUSED by echoing its header and question with QR set, so
    the answer is never longer than the query; over TCP the 2-byte length prefix of RFC 1035 §4.2.2."""

    name = "dns"

    @staticmethod
    def refuse(query: bytes) -> bytes:
        """The query itself with QR=1, RCODE=5 (REFUSED) and the answer/authority/additional counts zeroed."""
        if len(query) < 12:
            return b""
        flags = (query[2] | 0x80, (query[3] & 0x70) | 0x05)
        return query[:2] + bytes(flags) + query[4:6] + b"\0" * 6 + query[12:]

    def is_complete(self, received: bytes) -> bool:
        """A TCP query is complete at its length prefix (RFC 1035 §4.2.2)."""
        return len(received) >= 2 and len(received) >= 2 + int.from_bytes(received[:2], "big")

    def answer(self, request: bytes) -> bytes:
        """The refusal, length-prefixed."""
        refused = self.refuse(request[2:])
        return struct.pack(">H", len(refused)) + refused if refused else b""

    def answer_datagram(self, datagram: bytes) -> bytes:
        """The refusal: exactly as long as the query, or empty."""
        return self.refuse(datagram)


PROFILES: Mapping[str, Profile] = {
    profile.name: profile
    for profile in (Profile(), SshProfile(), HttpProfile(), TelnetProfile(), FtpProfile(), SmtpProfile(),
                    MysqlProfile(), RedisProfile(), RdpProfile(), VncProfile(), SmbProfile(), DnsProfile())
}
"""Every profile by name."""

DEFAULT_PORT_PROFILES: Mapping[int, str] = {
    21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 80: "http", 445: "smb", 587: "smtp",
    2222: "ssh", 2323: "telnet", 3306: "mysql", 3389: "rdp", 5900: "vnc", 6379: "redis", 8000: "http",
    8080: "http", 8081: "http", 13306: "mysql", 16379: "redis", 33389: "rdp", 35900: "vnc",
}
"""The profile of each port's usual service; any other port is ``generic``."""


def profile_name_for(port: int, overrides: Mapping[int, str]) -> str:
    """Name of the profile for ``port``: the configured override, else the usual service's, else generic."""
    return overrides.get(port) or DEFAULT_PORT_PROFILES.get(port, "generic")


def datagram_reply(profile: Profile, datagram: bytes) -> bytes:
    """The profile's reply to a UDP datagram, cut to the datagram's length: no amplification, ever."""
    return profile.answer_datagram(datagram)[: len(datagram)]
