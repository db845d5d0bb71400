# @TEST-DOC: A manager, a proxy and a worker replaying the vertical scan: the worker observes, the proxy chosen by the scanner's address aggregates, raises the notices (peer_descr proxy-1) and writes t1046.log (to the manager, the logger here), and the flag reaches the worker, whose conn.log tags the scanner's connections with scan.
# @TEST-PORT: BROKER_PORT1
# @TEST-PORT: BROKER_PORT2
# @TEST-PORT: BROKER_PORT3
# @TEST-EXEC: btest-bg-run manager "cp $FILES/cluster-layout.zeek . && CLUSTER_NODE=manager zeek -b $PACKAGE %INPUT"
# @TEST-EXEC: btest-bg-run proxy-1 "cp $FILES/cluster-layout.zeek . && CLUSTER_NODE=proxy-1 zeek -b $PACKAGE %INPUT"
# @TEST-EXEC: btest-bg-run worker-1 "cp $FILES/cluster-layout.zeek . && CLUSTER_NODE=worker-1 zeek -b --pseudo-realtime -C -r $TRACES/s1_vertical_syn.pcap $PACKAGE %INPUT"
# @TEST-EXEC: btest-bg-wait 60
# @TEST-EXEC: zeek-cut note src peer_descr < manager/notice.log | sort -u > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek-cut scanner kind n_targets n_ports < manager/t1046.log > detections
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: zeek-cut t1046_tags < manager/conn.log | tr , '\n' | sort -u > tags
# @TEST-EXEC: btest-diff tags

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
