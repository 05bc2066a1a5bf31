#!/usr/bin/env bash
# Time `skiff create` until every node is Ready, and `skiff start` after a
# stop, on the REAL-Kubernetes node image (scripts/build-real-node-image.sh).
#
#   scripts/bench-real.sh [RUNS]        # default 3 runs per row
#
# Rows: 1 node, and 1 control plane + 2 workers. Prints the median wall time
# of each command and the median of every create step (skiff's own step
# lines on stderr), as a Markdown table for docs/benchmarks.md.
set -euo pipefail

runs="${1:-3}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
log() { echo "bench-real: $*" >&2; }

scripts/ensure-docker.sh
image="$(scripts/build-real-node-image.sh | tail -n 1)"
export SKIFF_LB_IMAGE="${SKIFF_LB_IMAGE:-$(scripts/build-test-lb-image.sh | tail -n 1)}"
cargo build --quiet --release --bin skiff
skiff="$repo_root/target/release/skiff"
work="$(mktemp -d)"
name="bench-real-$$"
cleanup() {
	"$skiff" delete "$name" --kubeconfig "$work/kubeconfig" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}}'; }

for topology in "1 0" "1 2"; do
	read -r cps workers <<<"$topology"
	nodes=$((cps + workers))
	: >"$work/create" && : >"$work/start" && : >"$work/steps"
	for run in $(seq 1 "$runs"); do
		log "$nodes node(s), run $run/$runs"
		t0=$(now)
		"$skiff" create "$name" --image "$image" --control-planes "$cps" --workers "$workers" \
			--kubeconfig "$work/kubeconfig" --wait 5m 2>"$work/stderr" >/dev/null
		t1=$(now)
		awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/create"
		# " ✓ Start control plane (kubeadm init) 32.9s" -> "Start control plane (kubeadm init)|32.9"
		sed -n 's/^ ✓ \(.*\) \([0-9.]*\)\(m\?s\)$/\1|\2|\3/p' "$work/stderr" |
			awk -F'|' '{v=$2; if ($3=="ms") v=v/1000; print $1 "|" v}' >>"$work/steps"
		"$skiff" stop "$name" >/dev/null 2>&1
		t0=$(now)
		"$skiff" start "$name" >/dev/null 2>&1
		t1=$(now)
		awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$work/start"
		"$skiff" delete "$name" --kubeconfig "$work/kubeconfig" >/dev/null 2>&1
	done
	echo
	echo "#### $nodes node(s) ($cps control plane, $workers workers), median of $runs"
	echo
	echo "| what | seconds |"
	echo "| --- | --- |"
	echo "| \`skiff create\` until every node is Ready | $(median <"$work/create") |"
	cut -d'|' -f1 "$work/steps" | awk '!seen[$0]++' | while IFS= read -r step; do
		echo "| &nbsp;&nbsp;$step | $(grep -F "$step|" "$work/steps" | cut -d'|' -f2 | median) |"
	done
	echo "| \`skiff start\` after \`skiff stop\`, until Ready | $(median <"$work/start") |"
done
