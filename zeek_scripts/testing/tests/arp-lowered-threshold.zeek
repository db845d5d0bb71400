# @TEST-DOC: The ordinary ARP capture with the ARP sweep threshold lowered to 2 by redef: only the host that resolved four neighbours is reported (at 2 and 4 addresses); the gateway's gratuitous requests for its own address and the DHCP client's probes from 0.0.0.0 never count.
# @TEST-EXEC: zeek -C -r $TRACES/arp_benign.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports targets < t1046.log > detections
# @TEST-EXEC: btest-diff detections

redef T1046::arp_sweep_threshold = 2;
