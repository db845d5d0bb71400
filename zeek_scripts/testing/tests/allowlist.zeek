# @TEST-DOC: An authorized scanner subnet and the probe_policy hook each keep a scanner out of t1046.log and notice.log; conn.log still tags its connections.
# @TEST-EXEC: zeek -C -r $TRACES/s1_vertical_syn.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: grep -q rejected conn.log
# @TEST-EXEC: rm -f *.log
# @TEST-EXEC: zeek -C -r $TRACES/s2_horizontal_syn_routed.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log

redef T1046::authorized_scanners += {10.200.0.0/24};

hook T1046::probe_policy(p: T1046::Probe)
	{
	if ( p$scanner == 10.201.0.10 )
		break;
	}
