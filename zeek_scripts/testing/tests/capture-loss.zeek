# @TEST-DOC: A web client fetching pages from three servers while the capture loses its packets after the SYN (port 80) or everything but SYNs (8080): SYN-ACKs with no ACK seen (Sh) are no half-open probes; nothing is tagged or reported.
# @TEST-EXEC: zeek -C -r $TRACES/capture_loss_web.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek-cut id.resp_p conn_state history t1046_tags < conn.log | sort | uniq -c > outcomes
# @TEST-EXEC: btest-diff outcomes
