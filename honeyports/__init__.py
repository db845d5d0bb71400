"""Honeyports: Twisted listeners on ports and addresses that no legitimate client touches."""

from honeyports.profiles import DEFAULT_PORT_PROFILES, PROFILES, Profile, datagram_reply, profile_name_for
from honeyports.service import HoneyportService

__all__ = ["DEFAULT_PORT_PROFILES", "PROFILES", "HoneyportService", "Profile", "datagram_reply", "profile_name_for"]
