"""Source: flow logs -- a Linux firewall's log (netfilter ``LOG`` lines via a syslog file or journald, ulogd2's
JSON of an NFLOG group) and cloud flow logs (AWS VPC Flow Logs, Google Cloud VPC Flow Logs, Azure NSG and VNet
flow logs).

Each format has a module that turns one line (or JSON record) into :class:`~sensor.flows.records.FlowRecord` s
(:mod:`.netfilter`, :mod:`.ulogd`, :mod:`.aws`, :mod:`.gcp`, :mod:`.azure`); :mod:`.join` pairs what a firewall
or a flow log sees of one connection (a logged SYN and its answer; the two directions of a flow) into one
:class:`~sensor.observations.ConnAttempt` with an :class:`~sensor.observations.Outcome`, in bounded state;
:mod:`.sniff` tells the format from a file's first lines, :mod:`.read` reads a file and :mod:`.follow` follows
files (and :mod:`.s3` an S3 prefix) through rotation with the Zeek follower's machinery. Nothing here judges
evidence or delivers alerts: it only produces typed observations (docs/sources.md).
"""

FORMATS = ("netfilter", "ulogd", "aws", "gcp", "azure")
"""The flow-log formats, as the configuration names them (``flows[].format``)."""
