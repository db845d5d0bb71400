# @TEST-DOC: Ordinary ARP: a host resolving its gateway and three peers, the gateway's gratuitous ARP (arping -U), a DHCP client's duplicate address detection probes from 0.0.0.0 (arping -D), neighbours resolving the host in turn: nothing reported.
# @TEST-EXEC: zeek -C -r $TRACES/arp_benign.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
