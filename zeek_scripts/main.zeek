##! Detects MITRE ATT&CK T1046, network service discovery: vertical port scans,
##! horizontal address scans, randomised scans (failed first contacts judged
##! in the manner of Threshold Random Walk, Jung et al. 2004) and touches of
##! configured honeyports and dark addresses.
##!
##! Workers (or a standalone Zeek) turn each connection into one
##! :zeek:type:`T1046::Probe` as soon as its outcome is known and tag
##! scan-like connections in conn.log.  Probes are aggregated per scanner on
##! the proxy chosen by the scanner's address (the manager when no proxy is
##! up, the local node when standalone), which writes t1046.log and raises
##! the notices.

@load base/frameworks/cluster
@load base/frameworks/logging
@load base/frameworks/notice
@load base/protocols/conn

module T1046;

export {
	redef enum Log::ID += { LOG };

	global log_policy: Log::PolicyHook;

	redef enum Notice::Type += {
		## One scanner probed many ports of one target.
		Port_Scan,
		## One scanner probed many targets on the same port.
		Address_Scan,
		## One scanner's first contacts failed across many targets and ports.
		Random_Scan,
		## A scanner touched a configured honeyport.
		Honeyport_Probe,
		## A scanner touched a configured dark address.
		Dark_Address_Probe,
		## A host enumerated or browsed DNS-SD service types over mDNS.
		Mdns_Browse,
	};

	## Distinct ports of one target a scanner must fail to reach before
	## a port scan is reported.
	const port_scan_threshold = 15 &redef;

	## Distinct targets a scanner must fail to reach on one port before
	## an address scan is reported.
	const address_scan_threshold = 20 &redef;

	## Distinct ports (or targets) a scanner must leave half-open -- the
	## target answered SYN-ACK and the scanner reset or abandoned the
	## handshake, as a SYN scan does to open ports -- before a scan is
	## reported.  An ordinary TCP stack completes its handshakes, so a few
	## are enough; a SYN scan of only open ports (nmap -sS before -sV)
	## fails nothing else.
	const half_open_threshold = 3 &redef;

	## Distinct targets with failed first contacts a scanner needs, once
	## its random walk crossed :zeek:see:`T1046::trw_upper_bound`, before a
	## random scan is reported.
	const random_scan_min_targets = 4 &redef;

	## Distinct ports with failed first contacts a scanner needs before a
	## random scan is reported; a pure single-port sweep is an address scan.
	const random_scan_min_ports = 2 &redef;

	## Probability that a benign host's first contact with a service succeeds.
	const trw_benign_success = 0.8 &redef;

	## Probability that a scanner's first contact with a service succeeds.
	const trw_scanner_success = 0.2 &redef;

	## Likelihood ratio at which the random walk calls a source a scanner
	## (detection probability 0.99 over false positive probability 0.01).
	const trw_upper_bound = 99.0 &redef;

	## Floor of the likelihood ratio (0.01 / 0.99), so that a source that
	## looked benign for a long time can still be flagged after a few
	## failures instead of never.
	const trw_lower_bound = 0.0101 &redef;

	## A report is repeated as an update each time the count that triggered
	## it doubles (threshold, 2x, 4x, ...), until the caps stop the count.
	## Honeyport and dark address touches report from the first touch.
	const trap_threshold = 1 &redef;

	## Scanner state is dropped after this long without a new probe.
	const scan_idle_timeout = 15min &redef;

	## Scanner state older than this is restarted even if the scanner keeps
	## probing, so that rare failures of a busy benign host never add up
	## to a scan over days.
	const scan_max_window = 6hr &redef;

	## Most scanners tracked at once on an aggregating node, and most
	## suspects and forwarded first contacts remembered on an observing
	## node.  A full scanner table evicts an arbitrary entry for a new
	## source, so a flood of spoofed sources cannot keep a real scanner out;
	## a full suspect or contact table takes no new entries (answered first
	## contacts are then not forwarded, which only makes the walk stricter).
	const max_scanners = 50000 &redef;

	## Most distinct targets, ports and first-contacted services tracked
	## per scanner and per target or port of a scanner; counts stop there.
	const max_distinct = 1024 &redef;

	## Length of the target, port and uid samples in t1046.log.
	const sample_size = 10 &redef;

	## How long a node keeps tagging a flagged scanner's connections with
	## "scan" in conn.log.
	const flagged_scanner_timeout = 1hr &redef;

	## Suppression interval of the notices.  Each notice's identifier names
	## the scanner, the kind, the subject (target, port or mDNS name) and
	## the doubling level, so a repeat is suppressed while a new victim, a
	## new port or growth is not.
	const notice_suppression = 1hr &redef;

	## Authorized scanners (vulnerability scanners, monitoring).  Their
	## probes are neither counted nor reported; their connections keep
	## their conn.log tags.
	const authorized_scanners: set[subnet] = {} &redef;

	## Targets that never count (e.g. subnet-directed broadcast addresses).
	## Multicast and limited broadcast destinations never count anyway.
	const ignored_targets: set[subnet] = {} &redef;

	## Honeyports: address and port pairs no legitimate client uses.
	const honeyports: set[addr, port] = {} &redef;

	## Ports that are honeyports on every address.
	const honeyport_ports: set[port] = {} &redef;

	## Dark address space: allocated to nothing, so any touch is significant.
	const dark_nets: set[subnet] = {} &redef;

	## DNS-SD name whose PTR query enumerates all service types.
	const mdns_enumeration_name = "_services._dns-sd._udp.local" &redef;

	## DNS-SD service types whose browsing reveals remote-access services.
	const mdns_sensitive_services: set[string] = {
		"_ssh._tcp",
		"_sftp-ssh._tcp",
		"_rfb._tcp",
		"_smb._tcp",
		"_afpovertcp._tcp",
		"_workstation._tcp",
		"_rdp._tcp",
		"_telnet._tcp",
		"_device-info._tcp",
		"_ftp._tcp",
		"_nfs._tcp",
		"_adisk._tcp",
	} &redef;

	## A querier's repeats of the same mDNS question are reported once per
	## this interval.
	const mdns_report_interval = 1hr &redef;

	## Raise :zeek:see:`T1046::Mdns_Browse` for every reported question.
	## When false, only for questions that come from tools rather than an
	## operating system's responder: legacy unicast (source port not 5353)
	## or sent to a unicast address.  t1046.log has them all either way.
	const mdns_notice_all = F &redef;

	## A row of t1046.log: one detection or one update of it.
	type Info: record {
		## When the detection or update was made.
		ts: time &log;
		## The scanning source.
		scanner: addr &log;
		## port_scan, address_scan, random_scan, honeyport_probe,
		## dark_address_probe, mdns_service_enumeration or
		## mdns_service_browse.
		kind: string &log;
		## Distinct targets behind this detection.
		n_targets: count &log;
		## Distinct ports behind this detection.
		n_ports: count &log;
		## Probes seen from the scanner in its current window.
		n_probes: count &log;
		## Failed first contacts among them.
		n_failed: count &log;
		## First targets behind this detection.
		targets: vector of addr &log;
		## First ports behind this detection.
		ports: vector of port &log;
		## The scanner's first probe in its current window.
		first_seen: time &log;
		## The scanner's latest probe.
		last_seen: time &log;
		## uids of the scanner's first failed or trap probes.
		uids: vector of string &log;
		## The mDNS question's name (mdns kinds only).
		mdns_query: string &log &optional;
		## The mDNS question's type, e.g. PTR (mdns kinds only).
		mdns_qtype: string &log &optional;
		## Whether the question asked for a unicast response (QU bit).
		mdns_qu: bool &log &optional;
		## Whether the question came from a source port other than 5353.
		mdns_legacy_unicast: bool &log &optional;
		## One human sentence.
		msg: string &log;
	};

	## One observation of a source towards a target, sent from the node
	## that saw it to the node that aggregates its scanner.
	type Probe: record {
		## When it was seen.
		ts: time;
		## The connection's uid.
		uid: string;
		## The probing source (the connection's originator).
		scanner: addr;
		## The probed address.
		target: addr;
		## The probed port.
		target_port: port;
		## Set once the connection's outcome is known: T for a failed
		## first contact, F for an answered one.  Unset for a trap touch
		## (sent on the first packet) and for an mDNS question.
		failed: bool &optional;
		## The connection's t1046 tags so far.
		tags: set[string];
		## mDNS question name.
		mdns_query: string &optional;
		## mDNS question type name.
		mdns_qtype: string &optional;
		## mDNS QU bit.
		mdns_qu: bool &optional;
		## mDNS question from a source port other than 5353.
		mdns_legacy_unicast: bool &optional;
	};

	## Allowlisting policy, run where the probe is observed: a handler that
	## breaks drops the probe before it is counted.
	global probe_policy: hook(p: Probe);

	## Raised for every t1046.log row.
	global log_t1046: event(rec: Info);

	## Delivers a probe to the node that aggregates its scanner.
	global probe_seen: event(p: Probe);

	## Tells observing nodes that a source was reported as a scanner.
	global scanner_flagged: event(scanner: addr);

	## Sends a probe to its aggregating node unless it is allowlisted.
	global dispatch: function(p: Probe);

	## Writes a t1046.log row and raises its notice.
	global report: function(rec: Info, note: Notice::Type, n: count,
	    subject: string, identifier: string);
}

redef record Conn::Info += {
	## Why this connection looks like network service discovery:
	## unanswered, rejected, half_open, stealth (a TCP probe without a
	## handshake), icmp_unreachable, honeyport, dark_address, scan.  Unset
	## for untouched connections.
	t1046_tags: set[string] &log &optional;
};

redef record connection += {
	## t1046 tags collected while the connection is alive.
	t1046_tags: set[string] &optional;
	## Whether the connection's outcome was already sent as a probe.
	t1046_outcome_sent: bool &default=F;
};

## Counts of one shape of a scanner's probes, with insertion-ordered samples.
type Spread: record {
	targets: set[addr] &default=set();
	ports: set[port] &default=set();
	target_sample: vector of addr &default=vector();
	port_sample: vector of port &default=vector();
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

## Destinations that are never scan targets: multicast and limited broadcast.
const group_destinations: set[subnet] = {
	224.0.0.0/4,
	255.255.255.255/32,
	[ff00::]/8,
};

const notes: table[string] of Notice::Type = {
	["port_scan"] = Port_Scan,
	["address_scan"] = Address_Scan,
	["random_scan"] = Random_Scan,
	["honeyport_probe"] = Honeyport_Probe,
	["dark_address_probe"] = Dark_Address_Probe,
};

## Per scanner, on the aggregating node.
global scanners: table[addr] of ScannerState &read_expire=scan_idle_timeout;

## Sources reported as scanners, on every node, for the "scan" tag.
global flagged_scanners: set[addr] &create_expire=flagged_scanner_timeout;

## Sources with a failed probe recently seen here: only their answered
## first contacts are forwarded, which keeps ordinary traffic off the wire.
global suspects: set[addr] &read_expire=scan_idle_timeout;

## Answered first contacts already forwarded from this node.
global forwarded_contacts: set[addr, addr, port]
    &create_expire=scan_idle_timeout;

event zeek_init() &priority=5
	{
	Log::create_stream(LOG, Log::Stream($columns=Info, $ev=log_t1046,
	    $path="t1046", $policy=log_policy));
	}

function is_scan_target(a: addr): bool
	{
	return a !in group_destinations && a !in ignored_targets;
	}

function add_tag(c: connection, tag: string)
	{
	if ( ! c?$t1046_tags )
		c$t1046_tags = set();

	add c$t1046_tags[tag];
	}

## Whether the responder sent nothing at all.
function responder_silent(c: connection): bool
	{
	if ( c$resp?$num_pkts )
		return c$resp$num_pkts == 0;

	return c$resp$size == 0 && /[a-z]/ !in c$history;
	}

## Whether the originator sent anything (not a connection Zeek only saw
## answered, e.g. a unicast reply to a multicast question).
function originator_active(c: connection): bool
	{
	if ( c$orig?$num_pkts )
		return c$orig$num_pkts > 0;

	return c$orig$size > 0 || /[A-Z]/ in c$history;
	}

## The originator's SYN was answered with SYN-ACK, but the originator never
## completed the handshake nor sent data (nmap -sS to an open port: ShR).
## History of a TCP probe without a handshake: the originator's FIN, ACK
## or odd flags (a NULL probe leaves no letter), at most a reset in answer
## -- nmap -sF, -sN, -sX, -sA, -sM.  Real traffic picked up mid-stream
## carries data or the responder's ACK and does not match.
const stealth_history = /[FAIQr^]+/;

function is_half_open(c: connection): bool
	{
	local h = c$history;
	return "S" in h && "h" in h && "A" !in h && "D" !in h;
	}

## Why an ended connection counts as a failed first contact, or "" when it
## does not.
function failure_tag(c: connection): string
	{
	if ( c?$t1046_tags && "icmp_unreachable" in c$t1046_tags )
		return "icmp_unreachable";

	local proto = get_port_transport_proto(c$id$resp_p);
	local h = c$history;

	if ( proto == tcp )
		{
		if ( "S" !in h )
			return stealth_history == h ? "stealth" : "";

		if ( is_half_open(c) )
			return "half_open";

		if ( "h" in h )
			return "";

		if ( "r" in h )
			return "rejected";

		if ( responder_silent(c) )
			return "unanswered";

		return "";
		}

	if ( proto == udp && originator_active(c) && responder_silent(c) )
		return "unanswered";

	return "";
	}

## Tags for touching a configured honeyport or dark address.
function trap_tags(id: conn_id): set[string]
	{
	local tags: set[string] = set();

	if ( [id$resp_h, id$resp_p] in honeyports || id$resp_p in honeyport_ports )
		add tags["honeyport"];

	if ( id$resp_h in dark_nets )
		add tags["dark_address"];

	return tags;
	}

function make_probe(c: connection): Probe
	{
	local tags: set[string] = set();

	if ( c?$t1046_tags )
		tags = copy(c$t1046_tags);

	return Probe($ts=network_time(), $uid=c$uid, $scanner=c$id$orig_h,
	    $target=c$id$resp_h, $target_port=c$id$resp_p, $tags=tags);
	}

function dispatch(p: Probe)
	{
	if ( p$scanner in authorized_scanners || ! hook probe_policy(p) )
		return;

	if ( ! Cluster::is_enabled() )
		{
		event T1046::probe_seen(p);
		return;
		}

	if ( ! Cluster::publish_hrw(Cluster::proxy_pool, p$scanner, T1046::probe_seen,
	    p) )
		Broker::publish(Cluster::manager_topic, T1046::probe_seen, p);
	}

## Sends a connection's outcome once: every failed first contact, and an
## answered one only for a suspect and only the first per service.
function send_outcome(c: connection, failed: bool)
	{
	if ( c$t1046_outcome_sent || ! is_scan_target(c$id$resp_h) )
		return;

	c$t1046_outcome_sent = T;
	local scanner = c$id$orig_h;

	if ( failed )
		{
		if ( scanner !in suspects && |suspects| < max_scanners )
			add suspects[scanner];
		}
	else
		{
		if ( scanner !in suspects )
			return;

		if ( [scanner, c$id$resp_h, c$id$resp_p] in forwarded_contacts
		    || |forwarded_contacts| >= max_scanners )
			return;

		add forwarded_contacts[scanner, c$id$resp_h, c$id$resp_p];
		}

	local p = make_probe(c);
	p$failed = failed;
	dispatch(p);
	}

## Tags and sends a connection that just ended or failed.
function judge(c: connection)
	{
	local tag = failure_tag(c);

	if ( tag != "" )
		{
		add_tag(c, tag);
		send_outcome(c, T);
		}
	else if ( originator_active(c)
	    && ! responder_silent(c)
	    && get_port_transport_proto(c$id$resp_p) != icmp )
		send_outcome(c, F);
	}

event new_connection(c: connection)
	{
	local tags = trap_tags(c$id);

	if ( |tags| == 0 )
		return;

	for ( tag in tags )
		add_tag(c, tag);

	if ( is_scan_target(c$id$resp_h) )
		dispatch(make_probe(c));
	}

event connection_attempt(c: connection)
	{
	judge(c);
	}

event connection_rejected(c: connection)
	{
	judge(c);
	}

event connection_reset(c: connection)
	{
	if ( is_half_open(c) )
		judge(c);
	}

event icmp_unreachable(c: connection, info: icmp_info, code: count,
    context: icmp_context)
	{
	local id = context$id;

	if ( context$bad_hdr_len || ! connection_exists(id) )
		return;

	local probed = lookup_connection(id);

	# The unreachable must answer the probed connection's originator, not
	# a reply its responder sent to a closed port.
	if ( probed$id$orig_h != id$orig_h )
		return;

	add_tag(probed, "icmp_unreachable");
	send_outcome(probed, T);
	}

# Between Conn's set_conn (priority 5) and its log write (priority -5).
event connection_state_remove(c: connection)
	{
	judge(c);

	if ( c$id$orig_h in flagged_scanners )
		add_tag(c, "scan");

	if ( c?$conn && c?$t1046_tags )
		c$conn$t1046_tags = c$t1046_tags;
	}

event scanner_flagged(scanner: addr)
	{
	if ( |flagged_scanners| < max_scanners )
		add flagged_scanners[scanner];
	}

function flag_scanner(scanner: addr)
	{
	if ( Cluster::is_enabled() )
		Broker::publish(Cluster::worker_topic, T1046::scanner_flagged, scanner);
	else
		event T1046::scanner_flagged(scanner);
	}

function report(rec: Info, note: Notice::Type, n: count, subject: string,
    identifier: string)
	{
	Log::write(LOG, rec);

	local n_info = Notice::Info($note=note, $src=rec$scanner, $n=n, $msg=rec$msg,
	    $identifier=identifier, $suppress_for=notice_suppression);

	if ( subject != "" )
		n_info$sub = subject;

	if ( rec$kind == "port_scan" )
		n_info$dst = rec$targets[0];

	if ( rec$kind == "address_scan" )
		n_info$p = rec$ports[0];

	NOTICE(n_info);
	}

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

## Reports kind for subject when n reached threshold and doubled since the
## last report of the same kind and subject.
function check(scanner: addr, st: ScannerState, kind: string, subject: string,
    n: count, threshold: count, s: Spread)
	{
	if ( n < threshold )
		return;

	local key = cat(kind, "/", subject);
	local level = doubling_level(n, threshold);

	if ( key in st$levels && st$levels[key] >= level )
		return;

	st$levels[key] = level;
	local rec = Info($ts=network_time(), $scanner=scanner, $kind=kind,
	    $n_targets=|s$targets|, $n_ports=|s$ports|, $n_probes=st$n_probes,
	    $n_failed=st$n_failed, $targets=copy(s$target_sample), $ports=copy(
	    s$port_sample), $first_seen=st$first_seen, $last_seen=st$last_seen,
	    $uids=copy(st$uids), $msg=describe(kind, scanner, n, s));
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
		spread_add(st$by_target[p$target], p$target, p$target_port);

	if ( p$target_port in st$by_port )
		spread_add(st$by_port[p$target_port], p$target, p$target_port);
	}

## Judges a scanner after a failed first contact.
function check_scans(st: ScannerState, p: Probe)
	{
	if ( p$target in st$by_target )
		{
		local t = st$by_target[p$target];
		check(p$scanner, st, "port_scan", cat(p$target), |t$ports|,
		    port_scan_threshold, t);
		}

	if ( p$target_port in st$by_port )
		{
		local s = st$by_port[p$target_port];
		check(p$scanner, st, "address_scan", cat(p$target_port), |s$targets|,
		    address_scan_threshold, s);
		}

	if ( st$trw >= trw_upper_bound && |st$failed$ports| >= random_scan_min_ports )
		check(p$scanner, st, "random_scan", "", |st$failed$targets|,
		    random_scan_min_targets, st$failed);

	if ( "half_open" in p$tags )
		{
		local h = st$half_open;
		spread_add(h, p$target, p$target_port);

		if ( |h$targets| == 1 )
			check(p$scanner, st, "port_scan", "half-open", |h$ports|,
			    half_open_threshold, h);
		else if ( |h$ports| == 1 )
			check(p$scanner, st, "address_scan", "half-open", |h$targets|,
			    half_open_threshold, h);
		else
			check(p$scanner, st, "random_scan", "half-open", |h$targets| + |h$ports|,
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
	if ( p?$mdns_query )
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
