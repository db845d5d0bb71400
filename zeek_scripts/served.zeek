##! Outages are not scans, on the node that sees the traffic: a service
##! (address and port) that answered a working connection of any client
##! within :zeek:see:`T1046::served_memory` is served, and a probe of it
##! that was reset, left unanswered or answered by ICMP unreachable -- a
##! server that went down, a service restarting -- is dropped before it is
##! counted.  Its connection keeps its conn.log tags.

@load ./main

module T1046;

## Services seen working here, with when they last did.
global served_services: table[addr, port] of time &write_expire=served_memory;

function note_served(c: connection)
	{
	if ( [c$id$resp_h, c$id$resp_p] in served_services
	    || |served_services| < max_scanners )
		served_services[c$id$resp_h, c$id$resp_p] = network_time();
	}

event connection_established(c: connection)
	{
	note_served(c);
	}

# A UDP (or other) service served when both sides sent something.
event connection_state_remove(c: connection)
	{
	if ( get_port_transport_proto(c$id$resp_p) == udp
	    && c$orig$size > 0
	    && c$resp$size > 0 )
		note_served(c);
	}

## The failures an outage makes: a service that stopped resets, drops or
## answers with ICMP unreachable.  A half-open handshake or a stealth probe
## is no outage: the service, if any, answered.
const outage_tags: set[string] = {
	"rejected",
	"unanswered",
	"icmp_unreachable"
};

hook probe_policy(p: Probe)
	{
	if ( p?$failed
	    && p$failed
	    && |p$tags & outage_tags| > 0
	    && [p$target, p$target_port] in served_services )
		break;
	}
