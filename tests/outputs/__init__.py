"""Tests of the outputs: spools, the spooled sink, each transport against real receivers, test-alert."""
