@load ./main
@load ./tagging
@load ./served
@load ./cluster
@load ./aggregate
@load ./mdns
@load ./arp
