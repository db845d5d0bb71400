"""Outputs: the sinks that deliver rendered alerts to stdout, a JSONL file, syslog (UDP, TCP, TLS, RELP) and
HTTP receivers (Splunk HEC, ``_bulk``, webhooks), each behind its own disk spool. They read nothing upstream
but the alerts handed to them.

``spool`` (the disk spool), ``transport`` (what a transport is), ``sink`` (the spooled sink and its worker),
``deadletter`` (alerts refused for good), one module per transport (``stdout``, ``file``, ``syslog``,
``relp``, ``http``), ``settings`` (reading an output's values) and ``build`` (sinks from the configuration).
"""
