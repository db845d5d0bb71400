# @TEST-DOC: SSH to 40 addresses that all exist, one after another (tests/data/reach/arp_answered_ssh): every ARP request answered and the answer used by a session with data both ways. Nothing reported, even with the ARP sweep threshold lowered to 1.
# @TEST-EXEC: zeek -C -r $TRACES/arp_answered_ssh.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log

redef T1046::arp_sweep_threshold = 1;
