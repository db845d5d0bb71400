"""Nodes: the link between remote honeyport/mDNS nodes and the central daemon — the wire protocol
(:mod:`.codec`), the centre's bounds (:mod:`.limits`) and credentials (:mod:`.tokens`), its listener
(:mod:`.listener`) and a node's forwarder (:mod:`.forwarder`). It carries observations; it does not judge
them.

A node (``t1046-sensor honeyports`` or ``run`` with a ``node:`` section) spools each
:class:`~sensor.observations.HoneyportHit` and :class:`~sensor.observations.MdnsQuery` it makes, numbered
by a node-unique sequence; a forwarder delivers the spool to the central daemon (``run`` with ``nodes:``),
retrying with backoff while the centre is unreachable.

A node proves its name with its own token (``nodes.node_tokens_file``: a stolen token speaks for one node
only, and is revoked by deleting its line) or, where the centre also has a shared token, a node not named
there gives its name with that. Either way the name is kept beside the TLS peer address
(``edge-a@10.1.2.3``) in every observation the node submits, never taken from an observation. A node run
is its name and ``epoch`` (random, kept in the node's state directory); the centre remembers the last
sequence number of each run (bounded), so a batch re-sent after a lost ack is not counted twice. The
daemon saves those numbers in its checkpoint with the correlator state they went into, and acknowledges
observations only once that checkpoint is written: until then the node keeps them spooled, and a centre
killed with -9 neither loses nor repeats any of them.
"""
