# @TEST-DOC: The ordinary ARP capture with the ARP sweep threshold lowered to 1 by redef: the host that pinged its gateway and three peers used every answer, so only its arping of a peer (answered, no connection after it) counts, and it alone is reported; the gateway's gratuitous requests for its own address and the DHCP client's probes from 0.0.0.0 never count.
# @TEST-EXEC: zeek -C -r $TRACES/arp_benign.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports n_failed targets < t1046.log > detections
# @TEST-EXEC: btest-diff detections

redef T1046::arp_sweep_threshold = 1;
