@load ./main
@load ./mdns
