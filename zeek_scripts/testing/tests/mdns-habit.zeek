# @TEST-DOC: A router asks for one service type from a fresh ephemeral port every 20 minutes (the type made sensitive here): its first question is reported; once its questions are a habit (4 episodes over 15 minutes) they are not, where the hourly repeat reported them three times.
# @TEST-EXEC: zeek -C -r $TRACES/mdns_habit.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut scanner kind mdns_query mdns_legacy_unicast < t1046.log > detections
# @TEST-EXEC: zeek-cut note src < notice.log | grep T1046:: > notices
# @TEST-EXEC: btest-diff detections
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: zeek -C -r $TRACES/mdns_habit.pcap $PACKAGE %INPUT T1046::mdns_habit_episodes=100
# @TEST-EXEC: zeek-cut scanner kind mdns_query < t1046.log | wc -l | tr -d ' ' > without-habits
# @TEST-EXEC: btest-diff without-habits

redef T1046::mdns_sensitive_services += {"_daap._tcp"};
