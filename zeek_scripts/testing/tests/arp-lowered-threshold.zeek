# @TEST-DOC: The ordinary ARP capture with the ARP sweep threshold lowered to 1 by redef: nothing is reported. The host that pinged its gateway and three peers and arpinged one of them used every answer; the gateway's gratuitous requests for its own address and the DHCP client's probes from 0.0.0.0 (one of them unanswered) never count.
# @TEST-EXEC: zeek -C -r $TRACES/arp_benign.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log

redef T1046::arp_sweep_threshold = 1;
