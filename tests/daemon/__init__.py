"""Tests of the daemon: sinks, follower, checkpoints, crash recovery, the embedded default."""
