# @TEST-DOC: A server stops serving seven ports while two clients and a monitoring poller keep trying them: their failures are to served services (an outage), so nothing is reported; the connections keep their tags.
# @TEST-EXEC: zeek -C -r $TRACES/b3_server_outage.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek-cut t1046_tags < conn.log | grep -v '^-$' | sort | uniq -c > tags
# @TEST-EXEC: btest-diff tags
