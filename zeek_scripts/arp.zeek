##! ARP sweeps: host discovery on the local segment, as nmap -sn of a local
##! subnet does it, which leaves nothing in conn.log.  One requester's ARP
##! requests for many distinct addresses within
##! :zeek:see:`T1046::arp_sweep_window` are reported as an ``address_scan``
##! with subject ``arp``.
##!
##! The observing node sends a requester's first request for each address per
##! window as a :zeek:type:`T1046::Probe` with ``arp`` set, to the node that
##! aggregates that requester (as for connections).  That node counts the
##! distinct addresses and reports at :zeek:see:`T1046::arp_sweep_threshold`
##! and each time the count doubles.  Only requests that ask the segment for
##! another host's address count: not ARP probes (sender address 0.0.0.0, the
##! duplicate address detection of RFC 5227 that DHCP clients run), not
##! gratuitous ARP (the sender asks for its own address), and not requests
##! sent to one host's hardware address, with which a neighbour cache
##! confirms an entry it already has (RFC 1122 2.3.2.1; Linux sends one to
##! each neighbour it talks to).  A sweep asks the whole segment: its
##! requests go to the broadcast address.

@load base/frameworks/notice
@load ./main
@load ./cluster
@load ./aggregate

module T1046;

## Requester and address pairs already sent from this node in the window.
global arp_forwarded: set[addr, addr] &create_expire=arp_sweep_window;

## What the aggregating node keeps about one requester's ARP requests.
type ArpState: record {
	## The requester's first counted request in its current window.
	first_seen: time;
	## Its latest counted request.
	last_seen: time;
	## Requests counted: each node sends one per address and window.
	n_requests: count &default=0;
	## Distinct addresses asked for.
	asked: set[addr] &default=set();
	## The first of them, in order.
	sample: vector of addr &default=vector();
	## Highest doubling level reported in this window.
	level: count &optional;
};

## Per requester, on the aggregating node.
global arp_requesters: table[addr] of ArpState &read_expire=arp_sweep_window;

## Requester states evicted because the table was full.
global evicted_requesters = 0;

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

event arp_request(mac_src: string, mac_dst: string, SPA: addr, SHA: string,
    TPA: addr, THA: string)
	{
	if ( ! is_arp_lookup(mac_dst, SPA, TPA)
	    || ! is_scan_target(TPA)
	    || SPA in arp_exempt_requesters
	    || [SPA, TPA] in arp_forwarded )
		return;

	# A full table only stops the deduplication; aggregation dedups too.
	if ( |arp_forwarded| < max_scanners )
		add arp_forwarded[SPA, TPA];

	dispatch(Probe($ts=network_time(), $uid="", $scanner=SPA, $target=TPA,
	    $target_port=0/unknown, $tags=set(), $arp=T));
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

event probe_seen(p: Probe)
	{
	if ( ! p$arp )
		return;

	local st = arp_state(p);
	st$n_requests += 1;

	if ( p$ts > st$last_seen )
		st$last_seen = p$ts;

	if ( p$target !in st$asked && |st$asked| < max_distinct )
		{
		add st$asked[p$target];

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
	local rec = Info($ts=network_time(), $scanner=p$scanner, $kind="address_scan",
	    $n_targets=n, $n_ports=0, $n_probes=st$n_requests, $n_failed=0,
	    $targets=copy(st$sample), $ports=vector(),
	    $first_seen=st$first_seen, $last_seen=st$last_seen, $uids=vector(),
	    $msg=fmt(
	    "%s sent ARP requests for %d addresses within %s (ARP sweep)",
	    p$scanner, n, arp_sweep_window));
	report(rec, Address_Scan, n, "arp", fmt("%s/address_scan/arp/%d", p$scanner,
	    level));
	flag_scanner(p$scanner);
	}
