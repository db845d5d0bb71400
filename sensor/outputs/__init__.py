"""Outputs: the sinks that deliver rendered alerts (stdout, file, syslog, HTTP) with their on-disk spools.
They read nothing upstream but the alerts handed to them."""
