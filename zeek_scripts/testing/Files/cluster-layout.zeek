# Cluster layout for tests/cluster.zeek: ports come from btest's @TEST-PORT.

redef Cluster::nodes = {
	["manager"] = [$node_type=Cluster::MANAGER, $ip=127.0.0.1, $p=to_port(getenv(
	    "BROKER_PORT1"))],
	["proxy-1"] = [$node_type=Cluster::PROXY, $ip=127.0.0.1, $p=to_port(getenv(
	    "BROKER_PORT2")), $manager="manager"],
	["worker-1"] = [$node_type=Cluster::WORKER, $ip=127.0.0.1, $p=to_port(getenv(
	    "BROKER_PORT3")), $manager="manager"],
};
