"""Detection: the pure correlator and its rule families. No clock, no sockets, no files: time is the
evidence's own, passed in."""
