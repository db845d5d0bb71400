##! ARP sweeps: host discovery on the local segment, as nmap -sn of a local
##! subnet does it, which leaves nothing in conn.log.  One requester's ARP
##! requests for many distinct addresses that did not answer, or whose
##! answer it did not use, within :zeek:see:`T1046::arp_sweep_window` are
##! reported as an ``address_scan`` with subject ``arp``.
##!
##! Only requests that ask the segment for another host's address count:
##! not ARP probes (sender address 0.0.0.0, the duplicate address detection
##! of RFC 5227 that DHCP clients run), not gratuitous ARP (the sender asks
##! for its own address), and not requests sent to one host's hardware
##! address, with which a neighbour cache confirms an entry it already has
##! (RFC 1122 2.3.2.1; Linux sends one to each neighbour it talks to).  A
##! sweep asks the whole segment: its requests go to the broadcast address.
##!
##! The observing node waits :zeek:see:`T1046::arp_reply_wait` after a
##! request.  It is evidence of probing when no ARP reply from the address
##! asked for came in that time (nobody is there), or when one did and no
##! connection between the requester's hardware address and that address
##! followed (the answer was all the requester wanted).  A host that
##! resolves the hosts it then talks to is not sweeping, however many.
##!
##! A requester whose hardware address is the link source of connections
##! from other addresses forwards packets: a gateway.  Its requests are made
##! on behalf of the packets it forwards, so its unanswered or unused ones
##! count for the source whose packets it forwarded, when that source was
##! the only one within :zeek:see:`T1046::arp_route_window` (a routed scan
##! of mostly absent targets), and for nobody otherwise; the gateway itself
##! is never reported.  The observing node announces a gateway to the node
##! that aggregates it, which drops what it counted for it.
##!
##! The observing node sends each counted request (first per scanner and
##! address per window) as a :zeek:type:`T1046::Probe` with ``arp`` set, to
##! the node that aggregates the scanner (as for connections).  That node
##! counts the distinct addresses and reports at
##! :zeek:see:`T1046::arp_sweep_threshold` and each time the count doubles.

@load base/frameworks/notice
@load ./main
@load ./cluster
@load ./aggregate

module T1046;

## A counted ARP request waiting to be judged, on the observing node.
type ArpWait: record {
	## When the request was seen.
	ts: time;
	## The requester's hardware address (the frame's source).
	mac: string;
	## Whether a connection between that hardware address and the address
	## asked for followed.
	used: bool &default=F;
};

## Requests waiting to be judged, by requester and address asked for.
global arp_waiting: table[addr, addr] of ArpWait;

## The latest ARP reply from each address, on the observing node.
global arp_replied: table[addr] of time &write_expire=arp_sweep_window;

## The address each hardware address last sent an ARP request from.
global arp_senders: table[string] of addr &read_expire=arp_sweep_window;

## What a gateway's hardware address forwarded lately.
type Forwarded: record {
	## The latest source whose packets it forwarded.
	source: addr;
	## When they were last seen.
	seen: time;
	## When another source's packets were last seen, if ever.
	other_seen: time &optional;
};

## Gateways by hardware address, on the observing node.
global arp_gateways: table[string] of Forwarded &read_expire=arp_sweep_window;

## Scanner and address pairs already sent from this node in the window.
global arp_forwarded: set[addr, addr] &create_expire=arp_sweep_window;

## What the aggregating node keeps about one scanner's ARP requests.
type ArpState: record {
	## The scanner's first counted request in its current window.
	first_seen: time;
	## Its latest counted request.
	last_seen: time;
	## Requests counted: each node sends one per address and window.
	n_requests: count &default=0;
	## Distinct addresses asked for.
	asked: set[addr] &default=set();
	## Those of them that nothing answered.
	unanswered: set[addr] &default=set();
	## The first of them, in order.
	sample: vector of addr &default=vector();
	## Whether its requests were a gateway's, for its forwarded packets.
	routed: bool &default=F;
	## Highest doubling level reported in this window.
	level: count &optional;
};

## Per scanner, on the aggregating node.
global arp_requesters: table[addr] of ArpState &read_expire=arp_sweep_window;

## Gateways announced to the aggregating node: their own requests never count.
global gateways: set[addr] &create_expire=arp_sweep_window;

## Requester states evicted because the table was full.
global evicted_requesters = 0;

## Judges a request once :zeek:see:`T1046::arp_reply_wait` has passed.
global arp_judge: event(requester: addr, target: addr);

## Whether an ARP request asks the segment for another host's address: not
## an ARP probe (sender 0.0.0.0), not a gratuitous announcement (the sender
## asks for its own address), and not sent to a unicast hardware address (a
## neighbour cache confirming an entry).  A request whose destination
## is unknown (empty or all zeros) counts.
function is_arp_lookup(mac_dst: string, sender: addr, target: addr): bool
	{
	if ( sender == 0.0.0.0 || target == 0.0.0.0 || sender == target )
		return F;

	return mac_dst == "ff:ff:ff:ff:ff:ff"
	    || mac_dst == ""
	    || mac_dst == "00:00:00:00:00:00";
	}

## Sends one judged request to the node that aggregates its scanner, once
## per scanner and address in the window.
function send_arp(scanner: addr, target: addr, ts: time, unanswered: bool,
    routed: bool)
	{
	if ( [scanner, target] in arp_forwarded )
		return;

	# A full table only stops the deduplication; aggregation dedups too.
	if ( |arp_forwarded| < max_scanners )
		add arp_forwarded[scanner, target];

	dispatch(Probe($ts=ts, $uid="", $scanner=scanner, $target=target,
	    $target_port=0/unknown, $failed=unanswered, $tags=set(), $arp=T,
	    $arp_routed=routed));
	}

event arp_request(mac_src: string, mac_dst: string, SPA: addr, SHA: string,
    TPA: addr, THA: string)
	{
	if ( ! is_arp_lookup(mac_dst, SPA, TPA) || SPA in arp_exempt_requesters )
		return;

	if ( mac_src in arp_senders || |arp_senders| < max_scanners )
		arp_senders[mac_src] = SPA;

	if ( ! is_scan_target(TPA) || [SPA, TPA] in arp_waiting )
		return;

	# A full table is not waited on: its requests count at once, so a
	# flood cannot hide a sweep.
	if ( |arp_waiting| >= max_scanners )
		{
		send_arp(SPA, TPA, network_time(), T, F);
		return;
		}

	arp_waiting[SPA, TPA] = ArpWait($ts=network_time(), $mac=mac_src);
	schedule arp_reply_wait { T1046::arp_judge(SPA, TPA) };
	}

event arp_reply(mac_src: string, mac_dst: string, SPA: addr, SHA: string,
    TPA: addr, THA: string)
	{
	# A reply not remembered (a full table) leaves the request unanswered.
	if ( SPA != 0.0.0.0
	    && ( SPA in arp_replied || |arp_replied| < max_scanners ) )
		arp_replied[SPA] = network_time();
	}

## Notes that the gateway at hardware address mac forwarded source's packets.
function forwarded(mac: string, gateway: addr, source: addr)
	{
	if ( mac !in arp_gateways )
		{
		if ( |arp_gateways| >= max_scanners )
			return;

		arp_gateways[mac] = Forwarded($source=source, $seen=network_time());
		announce_gateway(gateway);
		return;
		}

	local f = arp_gateways[mac];

	if ( f$source != source )
		{
		f$other_seen = f$seen;
		f$source = source;
		}

	f$seen = network_time();
	}

## Notes a connection from hardware address mac (sent from address orig) to
## address resp: a use of the answer to a request, and a gateway's
## forwarding when orig is not the address mac asks ARP from.
function arp_link(mac: string, orig: addr, resp: addr)
	{
	if ( mac !in arp_senders )
		return;

	local sender = arp_senders[mac];

	if ( orig != sender && orig != 0.0.0.0 && is_v4_addr(orig) )
		forwarded(mac, sender, orig);

	if ( [sender, resp] in arp_waiting )
		arp_waiting[sender, resp]$used = T;
	}

event new_connection(c: connection)
	{
	if ( |arp_senders| == 0 )
		return;

	if ( c$orig?$l2_addr )
		arp_link(c$orig$l2_addr, c$id$orig_h, c$id$resp_h);

	# The requester answering a connection from the address it asked for.
	if ( c$resp?$l2_addr
	    && c$resp$l2_addr in arp_senders
	    && [arp_senders[c$resp$l2_addr], c$id$orig_h] in arp_waiting )
		arp_waiting[arp_senders[c$resp$l2_addr], c$id$orig_h]$used = T;
	}

event T1046::arp_judge(requester: addr, target: addr)
	{
	if ( [requester, target] !in arp_waiting )
		return;

	local w = arp_waiting[requester, target];
	delete arp_waiting[requester, target];
	local answered = target in arp_replied && arp_replied[target] >= w$ts;

	if ( answered && w$used )
		return;

	if ( w$mac !in arp_gateways )
		{
		send_arp(requester, target, w$ts, ! answered, F);
		return;
		}

	# A gateway's request: the work of the one source it forwarded for.
	local f = arp_gateways[w$mac];
	local now = network_time();

	if ( now - f$seen <= arp_route_window
	    && ( ! f?$other_seen || now - f$other_seen > arp_route_window ) )
		send_arp(f$source, target, w$ts, ! answered, T);
	}

## Makes room in the full requester table by dropping an arbitrary entry,
## as :zeek:see:`T1046::max_scanners` promises for the scanner table.
function evict_one_requester()
	{
	local victim = 0.0.0.0;

	for ( candidate in arp_requesters )
		{
		victim = candidate;
		break;
		}

	delete arp_requesters[victim];
	++evicted_requesters;

	if ( evicted_requesters == 1 || evicted_requesters % 100000 == 0 )
		Reporter::warning(fmt("T1046: ARP requester table full (max_scanners = %d): %d entries evicted so far",
		    max_scanners, evicted_requesters));
	}

function arp_state(p: Probe): ArpState
	{
	if ( p$scanner in arp_requesters
	    && p$ts - arp_requesters[p$scanner]$first_seen > arp_sweep_window )
		delete arp_requesters[p$scanner];

	if ( p$scanner !in arp_requesters )
		{
		if ( |arp_requesters| >= max_scanners )
			evict_one_requester();

		arp_requesters[p$scanner] = ArpState($first_seen=p$ts, $last_seen=p$ts);
		}

	return arp_requesters[p$scanner];
	}

event gateway_seen(gateway: addr)
	{
	delete arp_requesters[gateway];

	if ( |gateways| < max_scanners )
		add gateways[gateway];
	}

## The t1046.log sentence of an ARP sweep.
function arp_sentence(scanner: addr, st: ArpState): string
	{
	local n = |st$asked|;
	local silent = |st$unanswered|;
	local what = fmt(
	    "%d addresses within %s, %d unanswered, %d answered but not used", n,
	    arp_sweep_window, silent, n - silent);

	if ( st$routed )
		return fmt("%s's forwarded packets made a gateway send ARP requests for %s (ARP sweep through a gateway)",
		    scanner, what);

	return fmt("%s sent ARP requests for %s (ARP sweep)", scanner, what);
	}

event probe_seen(p: Probe)
	{
	if ( ! p$arp || ( p$scanner in gateways && ! p$arp_routed ) )
		return;

	local st = arp_state(p);
	st$n_requests += 1;

	if ( p$arp_routed )
		st$routed = T;

	if ( p$ts > st$last_seen )
		st$last_seen = p$ts;

	if ( p$target !in st$asked && |st$asked| < max_distinct )
		{
		add st$asked[p$target];

		if ( p?$failed && p$failed )
			add st$unanswered[p$target];

		if ( |st$sample| < sample_size )
			st$sample[|st$sample|] = p$target;
		}

	local n = |st$asked|;

	if ( n < arp_sweep_threshold )
		return;

	local level = doubling_level(n, arp_sweep_threshold);

	if ( st?$level && st$level >= level )
		return;

	st$level = level;
	local subject = st$routed ? "arp-routed" : "arp";
	local rec = Info($ts=p$ts, $scanner=p$scanner, $kind="address_scan",
	    $n_targets=n, $n_ports=0, $n_probes=st$n_requests,
	    $n_failed=|st$unanswered|, $targets=copy(st$sample),
	    $ports=vector(), $first_seen=st$first_seen, $last_seen=st$last_seen,
	    $uids=vector(), $msg=arp_sentence(p$scanner, st));
	report(rec, Address_Scan, n, subject, fmt("%s/address_scan/%s/%d", p$scanner,
	    subject, level));
	flag_scanner(p$scanner);
	}
