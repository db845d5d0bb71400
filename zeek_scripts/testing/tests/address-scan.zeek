# @TEST-DOC: nmap -Pn sweep of 80 routed hosts on 6 ports: an Address_Scan per port (20, 40, 80 targets) and a Random_Scan from the random walk.
# @TEST-EXEC: zeek -C -r $TRACES/s2_horizontal_syn_routed.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log | grep address_scan | sort | uniq -c > detections
# @TEST-EXEC: btest-diff detections
