# @TEST-DOC: The nmap -sn sweep with max_scanners lowered to 10: the table of requests waiting for their answer fills at once, and the requests it cannot hold count at once instead of waiting, so a flood cannot hide a sweep. The scanner is still reported.
# @TEST-EXEC: zeek -C -r $TRACES/arp_nmap_sn_sweep.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut note src sub n < notice.log | grep T1046:: > notices
# @TEST-EXEC: btest-diff notices

redef T1046::max_scanners = 10;
