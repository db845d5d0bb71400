# @TEST-DOC: Spoofed failing sources fill the scanner table before a real vertical scan; the table evicts instead of refusing, so the real scanner is still tracked and reported.
# @TEST-EXEC: zeek -C -r $TRACES/s1_vertical_syn.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut scanner kind < t1046.log | sort -u > detections
# @TEST-EXEC: btest-diff detections

redef T1046::max_scanners = 50;

event network_time_init()
	{
	local i = 0;

	while ( i < 500 )
		{
		local spoofed = count_to_v4_addr(167903232 + i);
		event T1046::probe_seen(T1046::Probe($ts=network_time(), $uid="Cspoof",
		    $scanner=spoofed, $target=10.200.0.20, $target_port=9/tcp,
		    $failed=T, $tags=set()));
		++i;
		}
	}
