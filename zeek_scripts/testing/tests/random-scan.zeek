# @TEST-DOC: nmap sweep of the 4 live hosts of a segment on 6 ports: its SYNs are too small for the port and address thresholds, caught as a Random_Scan (every first contact failed or was half-open); its ARP host discovery of 60 addresses is an ARP sweep (address_scan at 20 and 40 addresses).
# @TEST-EXEC: zeek -C -r $TRACES/s2_horizontal_syn.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets < t1046.log > detections
# @TEST-EXEC: btest-diff detections
