# @TEST-DOC: nmap -sS --top-ports 1000 against one host: a Port_Scan for the scanner, updated each time the port count doubles; failed contacts tagged in conn.log.
# @TEST-EXEC: zeek -C -r $TRACES/s1_vertical_syn.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: zeek-cut t1046_tags < conn.log | tr , '\n' | sort -u > tags
# @TEST-EXEC: btest-diff tags
