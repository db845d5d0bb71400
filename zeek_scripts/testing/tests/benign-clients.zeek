# @TEST-DOC: A benign client with 8 failing tries to one closed port: those connections are tagged rejected, nothing is reported.
# @TEST-EXEC: zeek -C -r $TRACES/b1_benign_clients.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek-cut t1046_tags < conn.log | grep -v '^-$' | sort | uniq -c > tags
# @TEST-EXEC: btest-diff tags
