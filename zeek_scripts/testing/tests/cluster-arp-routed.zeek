# @TEST-DOC: A manager, a proxy and a worker replaying the routed scan captured on the target segment: the worker recognises the router as a gateway (announcing it to the proxy that aggregates it) and sends its unanswered requests for the routed scanner, whose proxy raises the Address_Scan notice with subject arp-routed (peer_descr proxy-1); the router is never reported.
# @TEST-PORT: BROKER_PORT1
# @TEST-PORT: BROKER_PORT2
# @TEST-PORT: BROKER_PORT3
# @TEST-EXEC: btest-bg-run manager "cp $FILES/cluster-layout.zeek . && CLUSTER_NODE=manager zeek -b $PACKAGE %INPUT"
# @TEST-EXEC: btest-bg-run proxy-1 "cp $FILES/cluster-layout.zeek . && CLUSTER_NODE=proxy-1 zeek -b $PACKAGE %INPUT"
# @TEST-EXEC: btest-bg-run worker-1 "cp $FILES/cluster-layout.zeek . && CLUSTER_NODE=worker-1 zeek -b --pseudo-realtime -C -r $TRACES/arp_routed_scan.pcap $PACKAGE %INPUT"
# @TEST-EXEC: btest-bg-wait 60
# @TEST-EXEC: zeek-cut note src sub n peer_descr < manager/notice.log | grep T1046:: | sort > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports n_failed < manager/t1046.log > detections
# @TEST-EXEC: btest-diff detections

@load policy/frameworks/cluster/experimental

redef Cluster::retry_interval = 1sec;
redef Log::default_rotation_interval = 0secs;

# The worker exits at the end of the trace; the others when it is gone.
@if ( Cluster::local_node_type() != Cluster::WORKER )
redef exit_only_after_terminate = T;
@endif

event terminate_me()
	{
	terminate();
	}

event zeek_init()
	{
	if ( Cluster::node == "worker-1" )
		suspend_processing();
	}

event Cluster::Experimental::cluster_started()
	{
	if ( Cluster::node != "worker-1" )
		return;

	continue_processing();
	}

event Cluster::node_down(name: string, id: string)
	{
	if ( name == "worker-1" )
		schedule 2sec { terminate_me() };
	}
