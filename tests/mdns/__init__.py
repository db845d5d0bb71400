"""Tests of the mDNS watcher, its detection rules, the decoys and the ``mdns`` command."""
