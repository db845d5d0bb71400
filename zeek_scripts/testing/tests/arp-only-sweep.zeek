# @TEST-DOC: nmap -sT -Pn of 41 addresses of the scanner's own segment, 38 of them absent (tests/data/reach/arp_only_sweep): the requests nothing answered count, those answered and used for a connection do not. An address_scan with subject arp for the scanner at 20 addresses, all unanswered.
# @TEST-EXEC: zeek -C -r $TRACES/arp_only_sweep.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src sub n < notice.log | grep T1046:: > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports n_probes n_failed msg < t1046.log > detections
# @TEST-EXEC: btest-diff detections
