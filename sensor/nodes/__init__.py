"""Nodes: the link between remote honeyport/mDNS nodes and the central daemon (codec, tokens, listener,
forwarder). It carries observations; it does not judge them."""
