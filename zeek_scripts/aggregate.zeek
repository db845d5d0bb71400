##! Aggregation, on the node that aggregates a scanner (a proxy, the manager
##! or a standalone Zeek): per scanner, its probes are counted (failed first
##! contacts per target and per port, half-open handshakes, trap touches, the
##! random walk over first contacts) and judged against the thresholds; a
##! detection is written to t1046.log and raised as a notice, again each time
##! its count doubles, and the scanner is flagged to the workers.  Accounting
##! (counts, samples, the walk) is kept apart from judging (thresholds and
##! doubling).

@load ./main
@load ./cluster

module T1046;

## Counts of one shape of a scanner's probes, with insertion-ordered samples.
type Spread: record {
	targets: set[addr] &default=set();
	ports: set[port] &default=set();
	target_sample: vector of addr &default=vector();
	port_sample: vector of port &default=vector();
	## The latest time of each (target, port), for the short window; at
	## most max_distinct of them.
	times: table[addr, port] of time &default=table();
};

## Everything an aggregating node keeps about one scanner.
type ScannerState: record {
	first_seen: time;
	last_seen: time;
	n_probes: count &default=0;
	n_failed: count &default=0;
	uids: vector of string &default=vector();
	## All failed first contacts.
	failed: Spread;
	## Failed first contacts per target and per port.
	by_target: table[addr] of Spread &default=table();
	by_port: table[port] of Spread &default=table();
	## Services whose first contact was already judged by the random walk.
	contacted: set[addr, port] &default=set();
	## The random walk's likelihood ratio.
	trw: double &default=1.0;
	## Half-open first contacts (SYN scan of open ports).
	half_open: Spread;
	honeyport: Spread;
	honeyport_touches: count &default=0;
	dark: Spread;
	dark_touches: count &default=0;
	## Highest doubling level reported, per kind and subject.
	levels: table[string] of count &default=table();
};

const notes: table[string] of Notice::Type = {
	["port_scan"] = Port_Scan,
	["address_scan"] = Address_Scan,
	["random_scan"] = Random_Scan,
	["honeyport_probe"] = Honeyport_Probe,
	["dark_address_probe"] = Dark_Address_Probe,
	["outbound_port_scan"] = Outbound_Scan,
	["outbound_address_scan"] = Outbound_Scan,
	["outbound_random_scan"] = Outbound_Scan,
};

## The kinds a scan's shape rules report: outbound_<kind> when outbound.
const scan_kinds = set("port_scan", "address_scan", "random_scan");

## Per scanner, on the aggregating node.
global scanners: table[addr] of ScannerState &read_expire=scan_idle_timeout;

function spread_add(s: Spread, target: addr, target_port: port)
	{
	if ( target !in s$targets && |s$targets| < max_distinct )
		{
		add s$targets[target];

		if ( |s$target_sample| < sample_size )
			s$target_sample[|s$target_sample|] = target;
		}

	if ( target_port !in s$ports && |s$ports| < max_distinct )
		{
		add s$ports[target_port];

		if ( |s$port_sample| < sample_size )
			s$port_sample[|s$port_sample|] = target_port;
		}
	}

## Notes when the probe's (target, port) was last counted in s.
function note_time(s: Spread, p: Probe)
	{
	if ( [p$target, p$target_port] in s$times || |s$times| < max_distinct )
		s$times[p$target, p$target_port] = p$ts;
	}

## Distinct (target, port) pairs of s counted within scan_window before ts.
function recent(s: Spread, ts: time): count
	{
	local n = 0;

	for ( [target, target_port], seen in s$times )
		if ( ts - seen <= scan_window )
			++n;

	return n;
	}

## How often threshold doubles up to n: 0 at the threshold, 1 at twice it.
function doubling_level(n: count, threshold: count): count
	{
	local level = 0;
	local step = threshold > 0 ? threshold : 1;

	while ( step * 2 <= n )
		{
		step = step * 2;
		++level;
		}

	return level;
	}

function describe(kind: string, scanner: addr, n: count, s: Spread): string
	{
	switch ( kind )
		{
		case "port_scan":
			return fmt("%s probed %d ports of %s without being answered normally",
			    scanner, n, s$target_sample[0]);
		case "address_scan":
			return fmt("%s probed %s on %d targets without being answered normally",
			    scanner, s$port_sample[0], n);
		case "random_scan":
			return fmt("%s failed first contacts with %d targets on %d ports", scanner, n,
			    |s$ports|);
		case "honeyport_probe":
			return fmt("%s touched honeyports %d times (%d targets, %d ports)", scanner, n,
			    |s$targets|, |s$ports|);
		case "dark_address_probe":
			return fmt("%s touched dark addresses %d times (%d targets)", scanner, n,
			    |s$targets|);
		default:
			return fmt("%s: %s", scanner, kind);
		}
	}

## Whether a scanner's probes of a spread are an outbound scan: the scanner
## inside Site::local_nets, most of the spread's targets outside them.
function is_outbound(scanner: addr, s: Spread): bool
	{
	if ( is_outside(scanner) )
		return F;

	local outside = 0;

	for ( target in s$targets )
		if ( is_outside(target) )
			++outside;

	return outside * 2 > |s$targets|;
	}

## Reports kind for subject when n reached threshold and doubled since the
## last report of the same kind and subject.  An outbound scan is reported as
## outbound_<kind>, by the shape rules only (not the random walk, whose
## premise is a site's own hosts) and only while failures are at least half
## of the scanner's probes: a host using the internet, a resolver or a mail
## relay fails a few first contacts among many answered ones.
function check(scanner: addr, st: ScannerState, kind: string, subject: string,
    n: count, threshold: count, s: Spread)
	{
	if ( n < threshold )
		return;

	local key = cat(kind, "/", subject);
	local level = doubling_level(n, threshold);

	if ( key in st$levels && st$levels[key] >= level )
		return;

	local msg = describe(kind, scanner, n, s);

	if ( kind in scan_kinds && is_outbound(scanner, s) )
		{
		if ( ( kind == "random_scan" && subject == "" )
		    || st$n_failed * 2 < st$n_probes )
			return;

		kind = "outbound_" + kind;
		msg = fmt("%s, outside the local networks (an outbound scan)", msg);
		}

	st$levels[key] = level;
	local rec = Info($ts=network_time(), $scanner=scanner, $kind=kind,
	    $n_targets=|s$targets|, $n_ports=|s$ports|, $n_probes=st$n_probes,
	    $n_failed=st$n_failed, $targets=copy(s$target_sample), $ports=copy(
	    s$port_sample), $first_seen=st$first_seen, $last_seen=st$last_seen,
	    $uids=copy(st$uids), $msg=msg);
	report(rec, notes[kind], n, subject, fmt("%s/%s/%s/%d", scanner, kind, subject,
	    level));
	flag_scanner(scanner);
	}

function remember_uid(st: ScannerState, uid: string)
	{
	if ( |st$uids| < sample_size )
		st$uids[|st$uids|] = uid;
	}

## Counts a trap touch, which is reported from the first one.
function count_trap(st: ScannerState, p: Probe)
	{
	remember_uid(st, p$uid);

	if ( "honeyport" in p$tags )
		{
		st$honeyport_touches += 1;
		spread_add(st$honeyport, p$target, p$target_port);
		check(p$scanner, st, "honeyport_probe", "", st$honeyport_touches,
		    trap_threshold, st$honeyport);
		}

	if ( "dark_address" in p$tags )
		{
		st$dark_touches += 1;
		spread_add(st$dark, p$target, p$target_port);
		check(p$scanner, st, "dark_address_probe", "", st$dark_touches,
		    trap_threshold, st$dark);
		}
	}

## Steps the random walk on the first contact with a service.
function walk(st: ScannerState, p: Probe)
	{
	if ( [p$target, p$target_port] in st$contacted
	    || |st$contacted| >= max_distinct )
		return;

	add st$contacted[p$target, p$target_port];

	if ( p$failed )
		st$trw = st$trw * ( 1 - trw_scanner_success ) / ( 1 - trw_benign_success );
	else
		st$trw = st$trw * trw_scanner_success / trw_benign_success;

	if ( st$trw < trw_lower_bound )
		st$trw = trw_lower_bound;
	}

## Counts a failed first contact per target and per port.
function count_failure(st: ScannerState, p: Probe)
	{
	st$n_failed += 1;
	remember_uid(st, p$uid);
	spread_add(st$failed, p$target, p$target_port);

	if ( p$target !in st$by_target && |st$by_target| < max_distinct )
		st$by_target[p$target] = Spread();

	if ( p$target_port !in st$by_port && |st$by_port| < max_distinct )
		st$by_port[p$target_port] = Spread();

	if ( p$target in st$by_target )
		{
		spread_add(st$by_target[p$target], p$target, p$target_port);
		note_time(st$by_target[p$target], p);
		}

	if ( p$target_port in st$by_port )
		{
		spread_add(st$by_port[p$target_port], p$target, p$target_port);
		note_time(st$by_port[p$target_port], p);
		}
	}

## Reports kind for subject (as check does) once threshold of s's pairs fell
## within scan_window, or n reached slow_threshold (unless 0) within the
## scanner's window however slowly, or when it was reported already (an
## update).
function check_window(p: Probe, st: ScannerState, kind: string, subject: string,
    n: count, threshold: count, s: Spread, slow_threshold: count &default=0)
	{
	if ( cat(kind, "/", subject) in st$levels
	    || ( slow_threshold > 0 && n >= slow_threshold )
	    || recent(s, p$ts) >= threshold )
		check(p$scanner, st, kind, subject, n, threshold, s);
	}

## Judges a scanner after a failed first contact.
function check_scans(st: ScannerState, p: Probe)
	{
	if ( p$target in st$by_target )
		{
		local t = st$by_target[p$target];
		check_window(p, st, "port_scan", cat(p$target), |t$ports|,
		    port_scan_threshold, t, slow_port_scan_threshold);
		}

	if ( p$target_port in st$by_port )
		{
		local s = st$by_port[p$target_port];
		check_window(p, st, "address_scan", cat(p$target_port), |s$targets|,
		    address_scan_threshold, s, slow_address_scan_threshold);
		}

	if ( st$trw >= trw_upper_bound && |st$failed$ports| >= random_scan_min_ports )
		check(p$scanner, st, "random_scan", "", |st$failed$targets|,
		    random_scan_min_targets, st$failed);

	if ( "half_open" in p$tags )
		{
		local h = st$half_open;
		spread_add(h, p$target, p$target_port);
		note_time(h, p);

		if ( |h$targets| == 1 )
			check_window(p, st, "port_scan", "half-open", |h$ports|, half_open_threshold, h);
		else if ( |h$ports| == 1 )
			check_window(p, st, "address_scan", "half-open", |h$targets|,
			    half_open_threshold, h);
		else
			check_window(p, st, "random_scan", "half-open", |h$targets| + |h$ports|,
			    half_open_threshold, h);
		}
	}

## Scanner states evicted because the table was full.
global evicted_scanners = 0;

## Makes room in the full scanner table by dropping one entry.  Table
## iteration order is arbitrary, so the victim is in effect random: a flood
## cannot aim at a real scanner, which is tracked again at its next probe.
function evict_one_scanner()
	{
	local victim = 0.0.0.0;

	for ( candidate in scanners )
		{
		victim = candidate;
		break;
		}

	delete scanners[victim];
	++evicted_scanners;

	if ( evicted_scanners == 1 || evicted_scanners % 100000 == 0 )
		Reporter::warning(fmt("T1046: scanner table full (max_scanners = %d): %d entries evicted so far",
		    max_scanners, evicted_scanners));
	}

function scanner_state(p: Probe): ScannerState
	{
	if ( p$scanner in scanners
	    && p$ts - scanners[p$scanner]$first_seen > scan_max_window )
		delete scanners[p$scanner];

	if ( p$scanner !in scanners )
		{
		if ( |scanners| >= max_scanners )
			evict_one_scanner();

		scanners[p$scanner] = ScannerState($first_seen=p$ts, $last_seen=p$ts,
		    $failed=Spread(), $half_open=Spread(), $honeyport=Spread(),
		    $dark=Spread());
		}

	return scanners[p$scanner];
	}

event probe_seen(p: Probe)
	{
	if ( p?$mdns_query || p$arp )
		return;

	local st = scanner_state(p);

	if ( p$ts > st$last_seen )
		st$last_seen = p$ts;

	if ( ! p?$failed )
		{
		count_trap(st, p);
		return;
		}

	st$n_probes += 1;
	walk(st, p);

	if ( p$failed )
		{
		count_failure(st, p);
		check_scans(st, p);
		}
	}
