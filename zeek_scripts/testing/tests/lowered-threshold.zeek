# @TEST-DOC: The same 4-host sweep with the address scan threshold lowered by redef: an address_scan row for each of the 6 ports (4 targets), besides the two of the ARP sweep of nmap's host discovery (20 and 40 addresses, no port).
# @TEST-EXEC: zeek -C -r $TRACES/s2_horizontal_syn.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log | grep address_scan | sort | uniq -c > detections
# @TEST-EXEC: btest-diff detections

redef T1046::address_scan_threshold = 4;
