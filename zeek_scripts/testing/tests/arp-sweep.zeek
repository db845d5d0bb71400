# @TEST-DOC: nmap -sn of a /24 on the same segment sends only ARP requests (510 for 255 addresses): an address_scan with subject arp for the scanner at 20, 40, 80 and 160 addresses, each with its Address_Scan notice; no ports, and nothing of the scanner in conn.log.
# @TEST-EXEC: zeek -C -r $TRACES/arp_nmap_sn_sweep.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src sub n < notice.log | grep T1046:: > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports n_probes targets < t1046.log > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: test ! -e conn.log || ! zeek-cut id.orig_h < conn.log | grep -qx 10.78.0.10
