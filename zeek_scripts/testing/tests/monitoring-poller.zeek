# @TEST-DOC: A monitoring poller that keeps failing on a host with nothing open: tagged rejected, never reported as a scanner.
# @TEST-EXEC: zeek -C -r $TRACES/b2_monitoring_poller.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek-cut t1046_tags < conn.log | grep -v '^-$' | sort | uniq -c > tags
# @TEST-EXEC: btest-diff tags
