##! mDNS / DNS-SD browsing (ATT&CK T1046): a PTR (or ANY) question for the
##! service type enumeration name or for a remote-access service type, sent
##! to 5353/udp.  Zeek's dns.log keeps only the last question of a message,
##! so every question is judged here as :zeek:see:`dns_request` raises it.

@load base/protocols/dns
@load ./main
@load ./cluster

module T1046;

## Queriers' questions already reported, on the aggregating node.
global mdns_reported: set[addr, string] &create_expire=mdns_report_interval;

## Which mDNS kind a question for this name is, or "" when it is not one.
function mdns_kind(query: string): string
	{
	if ( query == mdns_enumeration_name )
		return "mdns_service_enumeration";

	if ( ! ends_with(query, ".local") )
		return "";

	if ( sub_bytes(query, 1, |query| - 6) in mdns_sensitive_services )
		return "mdns_service_browse";

	return "";
	}

event dns_request(c: connection, msg: dns_msg, query: string, qtype: count,
    qclass: count, original_query: string)
	{
	# Only PTR and ANY questions browse.
	if ( c$id$resp_p != 5353/udp
	    || ( qtype != 12 && qtype != 255 )
	    || mdns_kind(query) == "" )
		return;

	# The QU bit is the top bit of the 16-bit question class.
	local p = Probe($ts=network_time(), $uid=c$uid, $scanner=c$id$orig_h,
	    $target=c$id$resp_h, $target_port=c$id$resp_p, $tags=set(),
	    $mdns_query=query, $mdns_qtype=DNS::query_types[qtype],
	    $mdns_qu=qclass >= 32768,
	    $mdns_legacy_unicast=c$id$orig_p != 5353/udp);
	dispatch(p);
	}

event probe_seen(p: Probe)
	{
	if ( ! p?$mdns_query
	    || [p$scanner, p$mdns_query] in mdns_reported
	    || |mdns_reported| >= max_scanners )
		return;

	add mdns_reported[p$scanner, p$mdns_query];

	local kind = mdns_kind(p$mdns_query);
	local unicast = p$target !in group_destinations;
	local targets: vector of addr = vector();

	if ( unicast )
		targets[0] = p$target;

	local how = p$mdns_legacy_unicast ? "legacy unicast " : "";
	local rec = Info($ts=network_time(), $scanner=p$scanner, $kind=kind,
	    $n_targets=|targets|, $n_ports=1, $n_probes=1, $n_failed=0,
	    $targets=targets, $ports=vector(p$target_port), $first_seen=p$ts,
	    $last_seen=p$ts, $uids=vector(p$uid), $mdns_query=p$mdns_query,
	    $mdns_qtype=p$mdns_qtype, $mdns_qu=p$mdns_qu,
	    $mdns_legacy_unicast=p$mdns_legacy_unicast, $msg=fmt(
	    "%s sent the %smDNS question %s %s to %s", p$scanner, how,
	    p$mdns_query, p$mdns_qtype, p$target));

	if ( mdns_notice_all || unicast || p$mdns_legacy_unicast )
		report(rec, Mdns_Browse, 1, p$mdns_query, fmt("%s/%s/%s", p$scanner, kind,
		    p$mdns_query));
	else
		Log::write(LOG, rec);
	}
