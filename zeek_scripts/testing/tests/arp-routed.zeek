# @TEST-DOC: A scanner on another subnet scans a segment through a router, 37 of its 40 targets absent, captured on the target segment (tests/data/reach/arp_routed_scan): the router's MAC is the link source of the scanner's packets, so the router is a gateway and its unanswered requests count for the scanner (subject arp-routed), never for the router.
# @TEST-EXEC: zeek -C -r $TRACES/arp_routed_scan.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src sub n < notice.log | grep T1046:: > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports n_failed msg < t1046.log | grep 'ARP' > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: ! zeek-cut scanner < t1046.log | grep -qx 10.79.2.1
