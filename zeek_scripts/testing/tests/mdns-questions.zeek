# @TEST-DOC: Every question of an mDNS query is in t1046_mdns.log: python-zeroconf browses 19 service types in one query, twice, where dns.log keeps one question of each query.
# @TEST-EXEC: zeek -C -r $TRACES/mdns_many_types.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut id.orig_h id.resp_h id.resp_p questions qtype_name query < t1046_mdns.log | sort | uniq -c > questions
# @TEST-EXEC: btest-diff questions
# @TEST-EXEC: zeek-cut id.orig_h query < dns.log | grep '^10.221.0.10' | wc -l | tr -d ' ' > dns-rows
# @TEST-EXEC: btest-diff dns-rows
