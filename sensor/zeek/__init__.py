"""Source: Zeek's logs — reading TSV/JSON logs (:mod:`.logs`), turning records into observations
(:mod:`.records`) and following a live log directory through rotation (:mod:`.follow`).

Nothing here judges evidence or delivers alerts: it only produces typed observations.
"""

KINDS = ("conn", "notice", "dns", "t1046", "t1046_mdns", "dhcp", "ntlm", "kerberos", "software")
"""The logs the sensor reads (``t1046_mdns`` is the package's every question of an mDNS query; the last four say
who holds an address: :mod:`.identity`); others in a directory are passed over."""
