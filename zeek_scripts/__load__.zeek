@load ./main
@load ./tagging
@load ./cluster
@load ./aggregate
@load ./mdns
