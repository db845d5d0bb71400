# @TEST-DOC: A honeyport and a dark address configured by redef: the sweep that touches them raises Honeyport_Probe and Dark_Address_Probe (besides its Random_Scan and the Address_Scan of its ARP host discovery), and conn.log tags those connections.
# @TEST-EXEC: zeek -C -r $TRACES/s2_horizontal_syn.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut id.resp_h id.resp_p t1046_tags < conn.log | awk '$3 ~ /honeyport/ { print $1, $2, "honeyport" } $3 ~ /dark_address/ { print $1, $2, "dark_address" }' | sort -u > tags
# @TEST-EXEC: btest-diff tags

redef T1046::honeyports += {[10.200.0.20, 22/tcp]};
redef T1046::dark_nets += {10.200.0.40/32};
