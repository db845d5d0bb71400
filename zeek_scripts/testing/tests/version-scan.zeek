# @TEST-DOC: nmap -sV of three open ports: nothing fails, but its SYN scan leaves three handshakes half-open, which is a Port_Scan; the later service probes are ordinary connections.
# @TEST-EXEC: zeek -C -r $TRACES/s4_version_scan.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: zeek-cut id.resp_p t1046_tags < conn.log | grep half_open | sort -u > tags
# @TEST-EXEC: btest-diff tags
