# @TEST-DOC: nmap -sU --top-ports 40 against one host: a Port_Scan; probes tagged unanswered, and icmp_unreachable where the target answered with ICMP port unreachable. nmap's 5353/udp payload is a DNS-SD service type enumeration, which is reported too.
# @TEST-EXEC: zeek -C -r $TRACES/s6_udp_scan.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind < t1046.log | sort -u > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: zeek-cut t1046_tags < conn.log | tr , '\n' | grep -E '^(icmp_unreachable|unanswered)$' | sort -u > tags
# @TEST-EXEC: btest-diff tags
