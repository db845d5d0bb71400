# @TEST-DOC: With T1046::outbound_scans = F the outbound sweep and the outbound vertical scan are no scans; an internal client on the internet (four failed first contacts among twenty) is none with the switch on.
# @TEST-EXEC: zeek -C -r $TRACES/outbound_telnet_sweep.pcap $PACKAGE %INPUT T1046::outbound_scans=F
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek -C -r $TRACES/outbound_vertical.pcap $PACKAGE %INPUT T1046::outbound_scans=F
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek -C -r $TRACES/outbound_benign_clients.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log

# The lab's internet is documentation space (198.51.100.0/24, 203.0.113.0/24), which
# Zeek counts as local (Site::private_address_space) unless told not to.
redef Site::private_address_space_is_local = F;
redef Site::local_nets += {10.0.0.0/8};
