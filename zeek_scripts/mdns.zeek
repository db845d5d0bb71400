##! mDNS / DNS-SD browsing (ATT&CK T1046).  Every question of an mDNS query
##! (to 5353/udp) is written to ``t1046_mdns.log``, since Zeek's dns.log keeps
##! only the last question of a message (macOS asks for 19 service types in
##! one packet).  A PTR (or ANY) question for the service type enumeration
##! name or for a remote-access service type is also reported (t1046.log, and
##! a notice when it comes from a tool) once per
##! :zeek:see:`T1046::mdns_report_interval` until it is a habit of its
##! querier.

@load base/protocols/dns
@load ./main
@load ./cluster

module T1046;

export {
	redef enum Log::ID += { MDNS_LOG };

	## A row of t1046_mdns.log: one question of an mDNS query, with the
	## field names of dns.log.
	type MdnsQuestion: record {
		## When the query was seen.
		ts: time &log;
		## The connection's uid.
		uid: string &log;
		## The querier and the query's destination (the group or a host).
		id: conn_id &log;
		## How many questions the query holds.
		questions: count &log;
		## The question's name.
		query: string &log;
		## The question's class, with the QU bit (its top bit) kept.
		qclass: count &log;
		## The question's type.
		qtype: count &log;
		## The question's type name, e.g. PTR.
		qtype_name: string &log;
	};

	## Raised for every t1046_mdns.log row.
	global log_t1046_mdns: event(rec: MdnsQuestion);
}

## How one querier has asked one question (sent from 5353 or not) over time.
type MdnsHabit: record {
	first: time;
	last: time;
	episodes: count;
	reported: time;
};

## Queriers' reported questions and their habits, on the aggregating node.
global mdns_habits: table[addr, string, bool] of MdnsHabit
    &read_expire=mdns_habit_memory;

event zeek_init() &priority=5
	{
	Log::create_stream(MDNS_LOG, Log::Stream($columns=MdnsQuestion,
	    $ev=log_t1046_mdns, $path="t1046_mdns"));
	}

## A DNS-SD service type: ``_name._tcp`` or ``_name._udp``.
const dns_sd_service = /^_[^.]+\._(tcp|udp)$/;

## Which mDNS kind a question for this name is, or "" when it is not one.
function mdns_kind(query: string): string
	{
	if ( query == mdns_enumeration_name )
		return "mdns_service_enumeration";

	if ( ! ends_with(query, ".local") )
		return "";

	local service = sub_bytes(query, 1, |query| - 6);

	if ( service in mdns_sensitive_services || dns_sd_service == service )
		return "mdns_service_browse";

	return "";
	}

## Notes one more question of a habit; whether it is habitual now.
function mdns_habitual(h: MdnsHabit, ts: time): bool
	{
	if ( ts - h$last >= mdns_episode_gap )
		++h$episodes;

	if ( ts > h$last )
		h$last = ts;

	if ( ts < h$first )
		h$first = ts;

	return h$episodes >= mdns_habit_episodes
	    && h$last - h$first >= mdns_habit_span;
	}

## The weights of the service types each querier browsed over multicast
## lately, on the aggregating node.
global mdns_browsed: table[addr] of table[string] of double
    &create_expire=scan_window;

## What a browse of a service type weighs towards a notice (1 alone).
function mdns_weight(service: string): double
	{
	if ( service in mdns_routine_services )
		return mdns_routine_weight;

	if ( service in mdns_sensitive_services )
		return 1.0;

	if ( service in mdns_chatter_services )
		return 0.0;

	return 1.0 / mdns_distinct_types;
	}

## Queriers whose browses raised a notice within scan_window, on the
## aggregating node.
global mdns_noticed: set[addr] &create_expire=scan_window;

## Whether a reported question raises a notice: the service type enumeration,
## or the browse that brings the weights of the distinct service types its
## querier browsed within scan_window to 1 (a question from a port other than
## 5353 weighs mdns_legacy_factor times as much), once per querier and window.
function mdns_unusual(p: Probe, kind: string): bool
	{
	if ( kind == "mdns_service_enumeration" )
		return T;

	if ( p$scanner in mdns_noticed )
		return F;

	if ( p$scanner !in mdns_browsed )
		{
		if ( |mdns_browsed| >= max_scanners )
			return F;

		mdns_browsed[p$scanner] = table();
		}

	local browsed = mdns_browsed[p$scanner];
	local service = sub_bytes(p$mdns_query, 1, |p$mdns_query| - 6);
	local weight = mdns_weight(service);

	if ( p$mdns_legacy_unicast )
		weight = weight * mdns_legacy_factor < 1.0 ? weight * mdns_legacy_factor :
		    1.0;

	if ( service in browsed && browsed[service] >= weight )
		weight = browsed[service];

	if ( service in browsed || |browsed| < max_distinct )
		browsed[service] = weight;

	local sum = 0.0;

	for ( name, w in browsed )
		sum += w;

	if ( sum < 1.0 - 1e-9 )
		return F;

	if ( |mdns_noticed| < max_scanners )
		add mdns_noticed[p$scanner];

	return T;
	}

event dns_request(c: connection, msg: dns_msg, query: string, qtype: count,
    qclass: count, original_query: string)
	{
	# Only standard queries (as dns.log), to the mDNS port.
	if ( c$id$resp_p != 5353/udp || msg$opcode != 0 )
		return;

	Log::write(MDNS_LOG, MdnsQuestion($ts=network_time(), $uid=c$uid, $id=c$id,
	    $questions=msg$num_queries, $query=query, $qclass=qclass,
	    $qtype=qtype, $qtype_name=DNS::query_types[qtype]));

	# Only PTR and ANY questions browse.
	if ( ( qtype != 12 && qtype != 255 ) || mdns_kind(query) == "" )
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
	if ( ! p?$mdns_query )
		return;

	local legacy = p$mdns_legacy_unicast;

	if ( [p$scanner, p$mdns_query, legacy] in mdns_habits )
		{
		local h = mdns_habits[p$scanner, p$mdns_query, legacy];

		if ( mdns_habitual(h, p$ts) || p$ts - h$reported < mdns_report_interval )
			return;

		h$reported = p$ts;
		}
	else
		{
		if ( |mdns_habits| >= max_scanners )
			return;

		mdns_habits[p$scanner, p$mdns_query, legacy] = MdnsHabit($first=p$ts,
		    $last=p$ts, $episodes=1, $reported=p$ts);
		}

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

	if ( mdns_notice_all || mdns_unusual(p, kind) )
		report(rec, Mdns_Browse, 1, p$mdns_query, fmt("%s/%s/%s", p$scanner, kind,
		    p$mdns_query));
	else
		Log::write(LOG, rec);
	}
