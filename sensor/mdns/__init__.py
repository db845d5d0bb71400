"""Source: the mDNS watcher — a multicast listener that turns mDNS questions into observations
(:mod:`.watch`), decoy advertisements as bait (:mod:`.decoy`) and the ``mdns`` command (:mod:`.command`).

Judging what counts as browsing belongs to :mod:`sensor.detect.mdns`, not here.
"""
