# @TEST-DOC: DNS-SD browsing with nmap and dig over mDNS: service type enumeration and browses for _ssh._tcp and _workstation._tcp, each reported once with its legacy unicast and QU flags, and a Mdns_Browse notice.
# @TEST-EXEC: zeek -C -r $TRACES/s8_mdns_browse.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind mdns_query mdns_qtype mdns_qu mdns_legacy_unicast < t1046.log | sort > detections
# @TEST-EXEC: btest-diff detections
