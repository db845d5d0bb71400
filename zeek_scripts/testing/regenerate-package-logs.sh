#!/bin/sh
# Rewrites the logs real Zeek writes with this package loaded, which the Python tests replay, and
# records the package's hash beside them (tests/test_zeek_package.py fails when it is stale):
#
#   tests/data/package-logs/<scenario>/*.log        TSV, from zeek_scripts/testing/Traces/<scenario>.pcap
#                                                   for each scenario of tests/data/captures/
#   tests/data/package-logs/<scenario>/zeek-json/   the same with LogAscii::use_json=T
#   tests/data/arp/<scenario>/zeek/, zeek-json/     from tests/data/arp/<scenario>/capture.pcap
#   tests/data/package-logs/<group>__<scenario>/    TSV and zeek-json/, from every other
#                                                   tests/data/<group>/<scenario>/capture.pcap
#                                                   (slow, stealth, identity, outage, reach, ...)
#
# Each package-logs folder gets a copy of its scenario's truth.json.
#
# Each run is `zeek -C -r capture.pcap local "Site::local_nets += {10.0.0.0/8}" zeek_scripts` in an
# empty directory, with the btests' seeds (ZEEK_SEED_FILE, so that a rerun writes the same uids in the same
# order); conn, notice, dns, t1046 and t1046_mdns logs are kept (those a run writes). Needs zeek on PATH.
# The outbound_* scenarios (tests/data/reach/) add `Site::private_address_space_is_local=F`: their
# internet is documentation space, which Zeek counts as local unless told not to.
#
# usage: regenerate-package-logs.sh          regenerate everything (run from anywhere)
#        regenerate-package-logs.sh --hash   print the package hash only
#
# The package hash is the sha256 of the sha256sum listing ("<sha256>  <path>" lines) of the
# package's .zeek files outside zeek_scripts/testing/ and zkg.meta, paths relative to the
# repository, sorted bytewise.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)

package_hash() {
	(cd "$repo" && {
		find zeek_scripts -path zeek_scripts/testing -prune -o -name '*.zeek' -print
		echo zkg.meta
	} | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d ' ' -f 1)
}

if [ "${1:-}" = --hash ]; then
	package_hash
	exit 0
fi

command -v zeek >/dev/null || { echo "regenerate-package-logs.sh: zeek is not on PATH" >&2; exit 1; }

# write_logs PCAP OUTDIR [json]
write_logs() {
	work=$(mktemp -d)
	json=
	[ "${3:-}" = json ] && json=LogAscii::use_json=T
	site=
	case "$2" in *outbound_*) site=Site::private_address_space_is_local=F ;; esac
	(cd "$work" && ZEEK_SEED_FILE="$repo/zeek_scripts/testing/Files/random.seed" \
		zeek -C -r "$1" local "Site::local_nets += {10.0.0.0/8}" $site "$repo/zeek_scripts" $json)
	mkdir -p "$2"
	rm -f "$2"/*.log
	for log in conn notice dns t1046 t1046_mdns; do
		if [ -f "$work/$log.log" ]; then cp "$work/$log.log" "$2/"; fi
	done
	rm -rf "$work"
}

# write_all PCAP OUTDIR: TSV into OUTDIR, JSON into OUTDIR/zeek-json
write_all() {
	write_logs "$1" "$2"
	write_logs "$1" "$2/zeek-json" json
}

for dir in "$repo"/tests/data/captures/*/; do
	name=$(basename "$dir")
	write_all "$repo/zeek_scripts/testing/Traces/$name.pcap" "$repo/tests/data/package-logs/$name"
	cp "$dir/truth.json" "$repo/tests/data/package-logs/$name/"
done

for pcap in "$repo"/tests/data/*/*/capture.pcap; do
	dir=$(dirname "$pcap")
	group=$(basename "$(dirname "$dir")")
	if [ "$group" = arp ]; then
		write_logs "$pcap" "$dir/zeek"
		write_logs "$pcap" "$dir/zeek-json" json
		continue
	fi
	out="$repo/tests/data/package-logs/${group}__$(basename "$dir")"
	write_all "$pcap" "$out"
	cp "$dir/truth.json" "$out/"
done

hash=$(package_hash)
version=$(zeek --version | sed 's/.* version //')
for provenance in "$repo/tests/data/package-logs/PROVENANCE.md" "$repo/tests/data/arp/PROVENANCE.md"; do
	sed -i "s/^package-sha256: .*/package-sha256: $hash/; s/^zeek-version: .*/zeek-version: $version/" "$provenance"
done
echo "regenerated with Zeek $version, package-sha256 $hash"
