# @TEST-DOC: Small and single-port scans: nmap -sS of ten ports of one host (nine reset), nmap -sS -p 445 of 16 addresses (four reset, twelve silent), hping3 SYNs with window 0 to 23/tcp of ten addresses, one a second (four reset, six silent): each reported.
# @TEST-EXEC: for t in small_port_scan sweep_445 zero_window_telnet; do mkdir $t && (cd $t && zeek -C -r $TRACES/$t.pcap $PACKAGE) || exit 1; done
# @TEST-EXEC: for t in small_port_scan sweep_445 zero_window_telnet; do echo $t; zeek-cut note src < $t/notice.log | grep T1046:: | sort -u; done > notices
# @TEST-EXEC: btest-diff notices
# @TEST-EXEC: for t in small_port_scan sweep_445 zero_window_telnet; do echo $t; zeek-cut scanner kind n_targets n_ports < $t/t1046.log; done > detections
# @TEST-EXEC: btest-diff detections
