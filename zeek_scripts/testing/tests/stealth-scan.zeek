# @TEST-DOC: nmap -sF (FIN probes, no handshake) against 100 ports: tagged stealth in conn.log and reported as a Port_Scan.
# @TEST-EXEC: zeek -C -r $TRACES/stealth_fin_scan.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: zeek-cut t1046_tags < conn.log | tr , '\n' | sort -u > tags
# @TEST-EXEC: btest-diff tags
