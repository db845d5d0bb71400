# @TEST-DOC: Slow scans over hours: 16 closed ports of one host, one every 7.5 minutes (the slow port scan threshold), and 445/tcp of 16 hosts, one every 90 minutes (the random walk, then the slow address scan threshold); the scanner state outlives the quiet spells.
# @TEST-EXEC: mkdir vertical && cd vertical && zeek -C -r $TRACES/s9_slow_vertical.pcap $PACKAGE
# @TEST-EXEC: mkdir horizontal && cd horizontal && zeek -C -r $TRACES/s9_slow_horizontal.pcap $PACKAGE
# @TEST-EXEC: for d in vertical horizontal; do zeek-cut note src < $d/notice.log | grep T1046:: | sort -u; done > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: for d in vertical horizontal; do zeek-cut scanner kind n_targets n_ports < $d/t1046.log; done > detections
# @TEST-EXEC: btest-diff detections
