# @TEST-DOC: nmap -T1 of 12 ports, one probe every 15 s for three minutes (below the slow threshold's 12 failures: ten ports reset): a Port_Scan once port_scan_threshold closed ports fall within scan_window.
# @TEST-EXEC: zeek -C -r $TRACES/slow_t1_vertical.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log > detections
# @TEST-EXEC: btest-diff detections
