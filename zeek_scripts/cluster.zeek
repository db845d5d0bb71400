##! Cluster routing.  Observing nodes send each probe to the node that
##! aggregates its scanner: the proxy that Cluster::publish_hrw picks by the
##! scanner's address, so every probe of one scanner meets on one proxy
##! whichever worker saw it; the manager when no proxy is up; the local node
##! when standalone.  A reported scanner is announced to every worker.

@load base/frameworks/cluster
@load ./main

module T1046;

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

## Tells every observing node that scanner was reported, for the "scan" tag.
function flag_scanner(scanner: addr)
	{
	if ( Cluster::is_enabled() )
		Broker::publish(Cluster::worker_topic, T1046::scanner_flagged, scanner);
	else
		event T1046::scanner_flagged(scanner);
	}

## Tells the node that aggregates gateway's ARP requests that it is one.
function announce_gateway(gateway: addr)
	{
	if ( ! Cluster::is_enabled() )
		{
		event T1046::gateway_seen(gateway);
		return;
		}

	if ( ! Cluster::publish_hrw(Cluster::proxy_pool, gateway, T1046::gateway_seen,
	    gateway) )
		Broker::publish(Cluster::manager_topic, T1046::gateway_seen, gateway);
	}
