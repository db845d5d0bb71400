# @TEST-DOC: nmap -sN of a target that answers nothing: the NULL probes leave no history letter and no reply; tagged stealth and reported as a Port_Scan.
# @TEST-EXEC: zeek -C -r $TRACES/silent_null_scan.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: zeek-cut proto conn_state history resp_pkts t1046_tags < conn.log | grep ^tcp | sort | uniq -c > outcomes
# @TEST-EXEC: btest-diff outcomes
