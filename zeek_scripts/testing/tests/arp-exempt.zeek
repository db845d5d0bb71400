# @TEST-DOC: The nmap -sn sweep reports nothing when its requester is listed in arp_exempt_requesters (as a router would be), nor when a probe_policy handler drops ARP probes.
# @TEST-EXEC: zeek -C -r $TRACES/arp_nmap_sn_sweep.pcap $PACKAGE "T1046::arp_exempt_requesters += {10.78.0.10/32}"
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log
# @TEST-EXEC: zeek -C -r $TRACES/arp_nmap_sn_sweep.pcap $PACKAGE %INPUT
# @TEST-EXEC: test ! -e t1046.log
# @TEST-EXEC: test ! -e notice.log || ! grep -q T1046:: notice.log

hook T1046::probe_policy(p: T1046::Probe)
	{
	if ( p$arp )
		break;
	}
