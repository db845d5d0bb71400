##! Observation, on the node that sees the traffic (a worker, or a standalone
##! Zeek): each TCP or UDP connection is judged once its outcome is known,
##! tagged in conn.log (``t1046_tags``) when it looks like network service
##! discovery, and sent as a :zeek:type:`T1046::Probe` to the node that
##! aggregates its originator (every failed first contact; an answered one
##! only for a suspect; a trap touch on its first packet).  Flagged scanners'
##! later connections get the ``scan`` tag.

@load base/protocols/conn
@load ./main

module T1046;

redef record Conn::Info += {
	## Why this connection looks like network service discovery:
	## unanswered, rejected, half_open (SYN-ACKed, then reset by the
	## originator), stealth (a TCP probe without a handshake),
	## icmp_unreachable, honeyport, dark_address, scan.  Unset for untouched
	## connections.
	t1046_tags: set[string] &log &optional;
};

redef record connection += {
	## t1046 tags collected while the connection is alive.
	t1046_tags: set[string] &optional;
	## Whether the connection's outcome was already sent as a probe.
	t1046_outcome_sent: bool &default=F;
};

## Sources reported as scanners, on every node, for the "scan" tag.
global flagged_scanners: set[addr] &create_expire=flagged_scanner_timeout;

## Sources with a failed probe recently seen here: only their answered
## first contacts are forwarded, which keeps ordinary traffic off the wire.
global suspects: set[addr] &read_expire=scan_idle_timeout;

## Answered first contacts already forwarded from this node.
global forwarded_contacts: set[addr, addr, port]
    &create_expire=scan_idle_timeout;

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

## History of a TCP probe without a handshake: the originator's FIN, ACK
## or odd flags, at most a reset in answer -- nmap -sF, -sX, -sA, -sM, and
## -sN answered by a reset.  Real traffic picked up mid-stream carries data
## or the responder's ACK and does not match.
const stealth_history = /[FAIQr^]+/;

## Whether a connection without a SYN is a probe without a handshake: the
## originator sent it, and its history is stealth_history's, or it is empty
## -- a packet with none of SYN, FIN, RST and ACK and no payload (NULL, CWR,
## ECE, PSH or URG only: nmap -sN, hping3 -Y or -X) leaves no letter -- and
## nothing answered it.
function is_stealth(c: connection): bool
	{
	if ( ! originator_active(c) )
		return F;

	if ( c$history == "" )
		return responder_silent(c);

	return stealth_history == c$history;
	}

## The originator's SYN was answered with SYN-ACK, and the originator reset
## it without completing the handshake (nmap -sS to an open port: ShR).
## Nothing else may have been seen of it: an ACK, data or FIN from either
## side means the handshake went on, and a content gap (G, g) means the
## capture lost packets.  A SYN-ACK with no reset after it is what a lossy
## capture shows of a working connection whose client packets it missed
## (history Sh): not a probe.
const half_open_history = /S[SRhtT]*/;

function is_half_open(c: connection): bool
	{
	local h = c$history;
	return "h" in h && "R" in h && half_open_history == h;
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
			return is_stealth(c) ? "stealth" : "";

		if ( is_half_open(c) )
			return "half_open";

		if ( "h" in h )
			return "";

		if ( "r" in h )
			return "rejected";

		# An originator that acknowledged or sent data was answered: the
		# capture missed the answer (it saw one direction only).
		if ( responder_silent(c) && /[AD]/ !in h )
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

## Sends a connection's outcome once: every failed first contact, and an
## answered one only for a suspect and only the first per service.
function send_outcome(c: connection, failed: bool)
	{
	if ( c$t1046_outcome_sent || ! is_in_scope(c$id$orig_h, c$id$resp_h) )
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

## Judges a TCP connection begun without a SYN once it has been watched for
## tcp_attempt_delay, as connection_attempt judges an unanswered SYN: a probe
## nothing answers has no end of its own, and would otherwise wait for
## tcp_inactivity_timeout (5 min).  Mid-stream traffic is judged when it ends.
global stealth_check: event(id: conn_id);

event stealth_check(id: conn_id)
	{
	if ( ! connection_exists(id) )
		return;

	local c = lookup_connection(id);

	if ( "S" !in c$history && is_stealth(c) )
		judge(c);
	}

event new_connection(c: connection)
	{
	# The connection's first packet is the current one; c$history does not
	# show it yet.
	if ( get_port_transport_proto(c$id$resp_p) == tcp )
		{
		local first = get_current_packet_header();

		if ( first?$tcp && ( first$tcp$flags & TH_SYN ) == 0 )
			schedule tcp_attempt_delay { stealth_check(c$id) };
		}

	local tags = trap_tags(c$id);

	if ( |tags| == 0 )
		return;

	for ( tag in tags )
		add_tag(c, tag);

	if ( is_in_scope(c$id$orig_h, c$id$resp_h) )
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
