# @TEST-DOC: The routed scan with arp_route_window set to 0: no routed source was the only one within it, so the gateway's unanswered requests count for nobody. The gateway is not reported either.
# @TEST-EXEC: zeek -C -r $TRACES/arp_routed_scan.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log || ! grep -q ARP t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep T1046:: notice.log | grep -q arp

redef T1046::arp_route_window = 0sec;
