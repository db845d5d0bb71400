# @TEST-DOC: masscan -p23 of 128 internet addresses from 10.79.0.2 inside Site::local_nets: an outbound address scan (T1046::Outbound_Scan at 6, 12, 24, 48 and 96 targets); nmap -sS of 1000 ports of one internet host: an outbound port scan.
# @TEST-EXEC: zeek -C -r $TRACES/outbound_telnet_sweep.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src p n < notice.log | grep T1046:: | sort > sweep-notices
# @TEST-EXEC: btest-diff sweep-notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < t1046.log | sort > sweep-detections
# @TEST-EXEC: btest-diff sweep-detections
# @TEST-EXEC: zeek -C -r $TRACES/outbound_vertical.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src dst n < notice.log | grep T1046:: | sort > vertical-notices
# @TEST-EXEC: btest-diff vertical-notices
# @TEST-EXEC: grep -q 'outside the local networks (an outbound scan)' t1046.log

# The lab's internet is documentation space (198.51.100.0/24, 203.0.113.0/24), which
# Zeek counts as local (Site::private_address_space) unless told not to.
redef Site::private_address_space_is_local = F;
redef Site::local_nets += {10.0.0.0/8};
