# @TEST-DOC: Multicast browses from an mDNS stack (port 5353 to the group), weighed as the Python side weighs them: avahi-browse of _ssh._tcp (a sensitive type) and of the service type enumeration raise Mdns_Browse; a single browse for _smb._tcp (routine) is logged without a notice; 19 types in one query (python-zeroconf) raise one notice, at the sixth unusual type.
# @TEST-EXEC: mkdir browse && cd browse && zeek -C -r $TRACES/avahi_browse.pcap $PACKAGE
# @TEST-EXEC: mkdir smb && cd smb && zeek -C -r $TRACES/avahi_smb_browse.pcap $PACKAGE
# @TEST-EXEC: mkdir many && cd many && zeek -C -r $TRACES/mdns_many_types.pcap $PACKAGE
# @TEST-EXEC: for d in browse many; do zeek-cut note src sub < $d/notice.log | grep T1046:: | sort -u; done > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: test ! -e smb/notice.log || ! grep -q T1046:: smb/notice.log
# @TEST-EXEC: for d in browse smb; do zeek-cut scanner kind mdns_query mdns_qtype mdns_legacy_unicast < $d/t1046.log | sort; done > detections
# @TEST-EXEC: btest-diff detections
