"""Honeyport tests: profiles, listeners, loopback integration, end-to-end in network namespaces."""
