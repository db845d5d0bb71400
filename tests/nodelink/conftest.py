"""Fixtures of the node link tests: the daemon tests' throwaway CA and server certificate, ports, deadlines."""

from __future__ import annotations

from daemon.conftest import Certificates, certificates, free_port

__all__ = ["Certificates", "certificates", "free_port"]
