##! Detects MITRE ATT&CK T1046, network service discovery: vertical port scans,
##! horizontal address scans, randomised scans (failed first contacts judged
##! in the manner of Threshold Random Walk, Jung et al. 2004), touches of
##! configured honeyports and dark addresses, and ARP sweeps.
##!
##! This script holds what the others share: every tunable, the notice types,
##! the t1046.log record and stream, the :zeek:type:`T1046::Probe` that
##! observing nodes send to aggregating ones, and the allowlisting hook.
##! ``__load__.zeek`` loads the rest, one concern each: ``tagging.zeek``
##! (observing connections and tagging conn.log), ``cluster.zeek`` (routing
##! probes and flags between nodes), ``aggregate.zeek`` (counting and judging
##! each scanner), ``mdns.zeek`` (DNS-SD browsing) and ``arp.zeek`` (ARP
##! sweeps).
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
@load base/utils/site

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
		## A host inside Site::local_nets scanned targets outside them
		## (its t1046.log kind names the shape: outbound_port_scan,
		## outbound_address_scan or outbound_random_scan).
		Outbound_Scan,
	};

	## Judge scans by hosts inside Site::local_nets of hosts outside them
	## (outbound scans: a compromised internal host scanning the internet).
	## When false, only targets inside Site::local_nets count.  Either way a
	## scan between two outside hosts never counts, and with Site::local_nets
	## empty every target counts (nothing tells inside from outside).
	const outbound_scans = T &redef;

	## Distinct ports of one target a scanner must fail to reach within
	## :zeek:see:`T1046::scan_window` before a port scan is reported.
	## Failures to services the network was seen serving do not count
	## (:zeek:see:`T1046::served_memory`): a server that went down is an
	## outage, not a scan.
	const port_scan_threshold = 6 &redef;

	## Distinct targets a scanner must fail to reach on one port within
	## :zeek:see:`T1046::scan_window` before an address scan is reported.
	const address_scan_threshold = 6 &redef;

	## The short window of the port scan, address scan and half-open
	## thresholds.
	const scan_window = 5min &redef;

	## Distinct ports of one target a scanner must fail to reach within its
	## window (:zeek:see:`T1046::scan_max_window`), however slowly, before a
	## slow port scan is reported (nmap -T1, -T0).
	const slow_port_scan_threshold = 12 &redef;

	## Distinct targets a scanner must fail to reach on one port within its
	## window, however slowly, before a slow address scan is reported.
	const slow_address_scan_threshold = 12 &redef;

	## How long a service (address and port) that answered a working
	## connection of any client is remembered as served, on the observing
	## node; failed probes of it do not count.
	const served_memory = 1day &redef;

	## Distinct ports (or targets) a scanner must leave half-open within
	## :zeek:see:`T1046::scan_window` -- the target answered SYN-ACK and
	## the scanner reset or abandoned the handshake, as a SYN scan does to
	## open ports -- before a scan is reported.  An ordinary TCP stack completes its handshakes, so a few
	## are enough; a SYN scan of only open ports (nmap -sS before -sV)
	## fails nothing else.
	const half_open_threshold = 3 &redef;

	## Distinct targets with failed first contacts a scanner needs, once
	## its random walk crossed :zeek:see:`T1046::trw_upper_bound`, before a
	## random scan is reported.
	const random_scan_min_targets = 4 &redef;

	## Distinct ports with failed first contacts a scanner needs before a
	## random scan is reported.  At 1, a sweep of one port whose first
	## contacts fail is reported by the walk too, however slow it is.
	const random_scan_min_ports = 1 &redef;

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

	## Scanner state is dropped after this long without a new probe: a
	## slow scan's failures outlive its quiet spells.
	const scan_idle_timeout = 1day &redef;

	## Scanner state older than this is restarted even if the scanner keeps
	## probing, so that rare failures of a busy benign host never add up
	## to a scan over days.  The window of the slow thresholds.
	const scan_max_window = 1day &redef;

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

	## DNS-SD service types whose browsing reveals remote-access services
	## (a browse of any other service type is reported too, and weighed).
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
	## this interval, until they are a habit.
	const mdns_report_interval = 1hr &redef;

	## Silence that separates two episodes of one querier asking one
	## question.
	const mdns_episode_gap = 10sec &redef;

	## Episodes of one question (from one querier, sent from 5353 or from
	## another port) that make it a habit, once they span
	## :zeek:see:`T1046::mdns_habit_span`.  A habitual question is no longer
	## reported: the periodic browsing of a desktop, a router or a
	## monitoring script (the sensor's Python side applies the same rule).
	const mdns_habit_episodes = 4 &redef;

	## Time the episodes of a habit must span at least.
	const mdns_habit_span = 15min &redef;

	## How long a querier's habit is remembered after its latest question.
	const mdns_habit_memory = 1day &redef;

	## Raise :zeek:see:`T1046::Mdns_Browse` for every reported question.
	## When false, only for the service type enumeration, and for the browse
	## that brings the weights of the distinct service types its querier
	## browsed within :zeek:see:`T1046::scan_window` to 1, once per querier
	## and window: a sensitive type weighs 1, a routine one
	## :zeek:see:`T1046::mdns_routine_weight`, a chatter one nothing, any
	## other one over :zeek:see:`T1046::mdns_distinct_types`, and a question
	## from a port other than 5353 :zeek:see:`T1046::mdns_legacy_factor`
	## times as much (the Python side's weights).  t1046.log has every
	## reported question either way.
	const mdns_notice_all = F &redef;

	## Sensitive service types that desktops browse by themselves (file
	## shares, Time Machine, device sync): a browse of one of them weighs
	## :zeek:see:`T1046::mdns_routine_weight`.
	const mdns_routine_services: set[string] = {
		"_smb._tcp",
		"_afpovertcp._tcp",
		"_adisk._tcp",
		"_apple-mobdev2._tcp",
		"_webdav._tcp",
		"_webdavs._tcp",
		"_ftp._tcp",
		"_nfs._tcp",
	} &redef;

	## What a browse of a routine service type weighs.
	const mdns_routine_weight = 0.25 &redef;

	## Everyday consumer service types (media, printers, home automation):
	## browsing them weighs nothing.
	const mdns_chatter_services: set[string] = {
		"_airplay._tcp",
		"_raop._tcp",
		"_googlecast._tcp",
		"_ipp._tcp",
		"_ipps._tcp",
		"_printer._tcp",
		"_pdl-datastream._tcp",
		"_scanner._tcp",
		"_uscan._tcp",
		"_uscans._tcp",
		"_spotify-connect._tcp",
		"_companion-link._tcp",
		"_homekit._tcp",
		"_hap._tcp",
		"_hap._udp",
		"_sleep-proxy._udp",
		"_touch-able._tcp",
		"_airport._tcp",
		"_daap._tcp",
		"_dpap._tcp",
		"_home-sharing._tcp",
		"_matter._tcp",
		"_matterc._udp",
		"_meshcop._udp",
		"_trel._udp",
		"_sonos._tcp",
		"_amzn-wplay._tcp",
		"_androidtvremote2._tcp",
		"_googlezone._tcp",
		"_mediaremotetv._tcp",
		"_rdlink._tcp",
	} &redef;

	## How many times more a browse from a port other than 5353 (legacy
	## unicast: dig, nmap's scripts) weighs, up to 1: a host's mDNS stack
	## sends from 5353.
	const mdns_legacy_factor = 2.0 &redef;

	## Distinct service types of no list above whose browses, within
	## :zeek:see:`T1046::scan_window`, add up to a notice on their own (each
	## weighs one over this).
	const mdns_distinct_types = 6 &redef;

	## Distinct addresses one requester must ask for in ARP requests that
	## went unanswered, or whose answer it did not use, within
	## :zeek:see:`T1046::arp_sweep_window` before an ARP sweep (host
	## discovery on the local segment, as nmap -sn does it) is reported as
	## an address scan.  A host resolves the hosts it talks to and then
	## talks to them; gratuitous ARP and ARP probes (sender 0.0.0.0) never
	## count.
	const arp_sweep_threshold = 20 &redef;

	## Window in which a requester's ARP requests are counted; its count
	## restarts after this long, and is dropped after this long without a
	## new request.
	const arp_sweep_window = 5min &redef;

	## Requesters whose ARP requests never count.  Gateways need not be
	## listed: a requester whose hardware address sends other addresses'
	## packets is recognised as one (see ``arp.zeek``).  Their connections
	## are still judged like any other source's.
	const arp_exempt_requesters: set[subnet] = {} &redef;

	## How long an ARP request waits for its answer and for the
	## requester's traffic to the address it asked for.  Only a request
	## that no reply for that address answered within this long, or whose
	## answer the requester did not use (no connection between its
	## hardware address and the address), counts towards an ARP sweep.
	## Linux gives up on an address after three requests a second apart.
	const arp_reply_wait = 3sec &redef;

	## A gateway's unanswered ARP requests are the work of the source
	## whose packets it forwarded: they count for that source when it was
	## the only one whose packets the gateway forwarded within this long
	## before the request was judged, and for nobody otherwise.
	const arp_route_window = 30sec &redef;

	## A row of t1046.log: one detection or one update of it.
	type Info: record {
		## When the detection or update was made (for an ARP sweep, the
		## time of the request that made it, judged
		## :zeek:see:`T1046::arp_reply_wait` later).
		ts: time &log;
		## The scanning source.
		scanner: addr &log;
		## port_scan, address_scan (also an ARP sweep), random_scan,
		## honeyport_probe, dark_address_probe, mdns_service_enumeration
		## or mdns_service_browse; outbound_port_scan, outbound_address_scan
		## or outbound_random_scan for a scan of targets outside
		## Site::local_nets by a host inside them.
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
		## An ARP request of scanner for target's hardware address: no
		## connection, so uid is empty and target_port is 0/unknown;
		## failed is T when nothing answered it, F when it was answered
		## and its answer not used.
		arp: bool &default=F;
		## An ARP request a gateway sent for scanner's forwarded packets.
		arp_routed: bool &default=F;
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

	## Tells the node that aggregates gateway's ARP requests that it is a
	## gateway, whose own ARP requests never count.
	global gateway_seen: event(gateway: addr);

	## Sends a probe to its aggregating node unless it is allowlisted.
	global dispatch: function(p: Probe);

	## Writes a t1046.log row and raises its notice, both stamped with the
	## row's ts.
	global report: function(rec: Info, note: Notice::Type, n: count,
	    subject: string, identifier: string);
}

## Destinations that are never scan targets: multicast and limited broadcast.
const group_destinations: set[subnet] = {
	224.0.0.0/4,
	255.255.255.255/32,
	[ff00::]/8,
};

## Addresses outside Site::local_nets that are no host on the internet either
## (this network, loopback, link-local, reserved): never outbound targets.
const nowhere: set[subnet] = {
	0.0.0.0/8,
	127.0.0.0/8,
	169.254.0.0/16,
	240.0.0.0/4,
	[::]/127,
	[fe80::]/10,
};

event zeek_init() &priority=5
	{
	Log::create_stream(LOG, Log::Stream($columns=Info, $ev=log_t1046,
	    $path="t1046", $policy=log_policy));
	}

## Whether a probe of this address counts: not a group destination nor an
## ignored target.
function is_scan_target(a: addr): bool
	{
	return a !in group_destinations && a !in ignored_targets;
	}

## Whether a target lies outside Site::local_nets, the package telling
## inside from outside (Site::local_nets is not empty).
function is_outside(a: addr): bool
	{
	return |Site::local_nets| > 0 && ! Site::is_local_addr(a);
	}

## Whether a probe of target by scanner counts: a scan target inside
## Site::local_nets (from any scanner), or, with outbound_scans, a host
## outside them probed by a scanner inside them.
function is_in_scope(scanner: addr, target: addr): bool
	{
	if ( ! is_scan_target(target) )
		return F;

	if ( ! is_outside(target) )
		return T;

	return outbound_scans && ! is_outside(scanner) && target !in nowhere;
	}

function report(rec: Info, note: Notice::Type, n: count, subject: string,
    identifier: string)
	{
	Log::write(LOG, rec);
	# The row reaches the file at once, not at the writer's next heartbeat
	# (Threading::heartbeat_interval, 1 s): detections are few, and a live
	# reader alerts on them.
	Log::flush(LOG);

	local n_info = Notice::Info($ts=rec$ts, $note=note, $src=rec$scanner, $n=n,
	    $msg=rec$msg, $identifier=identifier,
	    $suppress_for=notice_suppression);

	if ( subject != "" )
		n_info$sub = subject;

	if ( rec$kind == "port_scan" || rec$kind == "outbound_port_scan" )
		n_info$dst = rec$targets[0];

	if ( ( rec$kind == "address_scan" || rec$kind == "outbound_address_scan" )
	    && |rec$ports| > 0 )
		n_info$p = rec$ports[0];

	NOTICE(n_info);
	}
