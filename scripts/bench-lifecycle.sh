#!/usr/bin/env bash
# Benchmark skiff's cluster lifecycle against the local Docker engine and
# print the results as markdown tables on stdout (progress goes to stderr).
#
#   scripts/bench-lifecycle.sh
#
# Environment:
#   RUNS=5              runs per measurement; the tables show the median
#   LIST_RUNS=30        runs of `skiff list` when hyperfine is not available
#   CREATE_WAIT=5m      --wait passed to `skiff create` (0 skips the Ready wait)
#   SKIFF_BENCH_IMAGE   node image to use [default: the offline test image,
#                       built by scripts/build-test-node-image.sh]
#   CARGO_TARGET_DIR    honoured by the release build, as by cargo itself
#
# What is measured, RUNS times each (wall clock around the skiff process):
#   - `skiff create` of 1 node, 1 control plane + 2 workers, and 1 control
#     plane + 4 workers, plus the per-step durations create prints on stderr.
#     "Nodes up" is the sum of the steps up to and including "Wait for nodes
#     to boot" (image, network, node containers, systemd up): what skiff itself
#     costs, before Kubernetes bootstrap, which the test image only simulates.
#   - `skiff stop`, `skiff start` of the 3-node cluster; `skiff delete` of
#     every size.
#   - `skiff list` with 5 benchmark clusters present (hyperfine when present).
#
# Every cluster made here is named bench-<pid>-..., so clusters of other
# people sharing the engine are never touched, and every one is deleted on
# exit, including on failure and Ctrl-C.
set -euo pipefail

RUNS="${RUNS:-5}"
LIST_RUNS="${LIST_RUNS:-30}"
CREATE_WAIT="${CREATE_WAIT:-5m}"

log() { echo "bench-lifecycle: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")"
# Never read or write the user's kubeconfig: skiff create writes, and
# skiff delete cleans, the files named by KUBECONFIG.
export KUBECONFIG="$work/kubeconfig"
# Plain step lines on stderr, which we parse.
export NO_COLOR=1
unset SKIFF_CLUSTER

# --- cleanup ----------------------------------------------------------------
skiff=""
clusters=() # every name we tried to create; delete tolerates missing ones
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n "$skiff" && ${#clusters[@]} -gt 0 ]]; then
		log "deleting benchmark clusters"
		"$skiff" delete --no-color "${clusters[@]}" >/dev/null 2>"$work/cleanup.log" ||
			{
				cat "$work/cleanup.log" >&2
				status=1
			}
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap runs once. skiff, in the
# same process group, gets the Ctrl-C too and rolls back a create in flight.
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ----------------------------------------------------------------
now_ns() { date +%s%N; }

# Median of the numbers on stdin, one per line (mean of the middle two for an
# even count); empty input prints nothing.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit
		if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
		else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minmax() {
	sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%.2f–%.2f\n", lo, hi }'
}

# run_timed LABEL CMD...: runs skiff CMD, appends the wall time (seconds) to
# $work/LABEL.times and keeps stderr in $work/LABEL.<n>.err for the step
# durations. Fails the benchmark, with skiff's output, when skiff fails.
run_timed() {
	local label=$1 n start end
	shift
	n=1
	if [[ -f "$work/$label.times" ]]; then
		n=$(($(wc -l <"$work/$label.times") + 1))
	fi
	start=$(now_ns)
	if ! "$skiff" "$@" >"$work/$label.$n.out" 2>"$work/$label.$n.err"; then
		log "skiff $* failed:"
		cat "$work/$label.$n.out" "$work/$label.$n.err" >&2
		return 1
	fi
	end=$(now_ns)
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f\n", (e - s) / 1e9 }' >>"$work/$label.times"
}

# Step lines look like ` ✓ Create nodes 1.66s` (`12.3s`, `2m05s` when long):
# print "NAME<TAB>SECONDS" for each.
steps_of() {
	awk '$1 == "✓" {
		d = $NF; secs = 0
		if (d ~ /m/) { split(d, p, "m"); secs = p[1] * 60; d = p[2] }
		sub(/s$/, "", d); secs += d
		$1 = ""; $NF = ""; name = $0
		gsub(/^ +| +$/, "", name)
		printf "%s\t%.3f\n", name, secs }' "$@"
}

# Seconds until the nodes are up: the steps through "Wait for nodes to boot".
nodes_up_of() {
	steps_of "$1" | awk -F '\t' '{ sum += $2 } $1 == "Wait for nodes to boot" { print sum; exit }'
}

stat_row() { # LABEL FILE GOAL -> a table row with median and range
	local label=$1 file=$2 goal=${3:-}
	printf '| %s | %s | %s | %s |\n' "$label" "$(median <"$file")" "$(minmax <"$file")" "$goal"
}

# --- prerequisites ----------------------------------------------------------
scripts/ensure-docker.sh

log "building skiff (release)"
# cargo honours CARGO_TARGET_DIR (and build.target-dir); ask it where the
# binary went instead of guessing.
skiff="$(cargo build --release --bin skiff --message-format=json-render-diagnostics |
	grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)"
[[ -x "$skiff" ]] || {
	log "cannot find the skiff binary cargo built"
	exit 1
}

image="${SKIFF_BENCH_IMAGE:-}"
if [[ -z "$image" ]]; then
	image="$(scripts/build-test-node-image.sh | tail -n 1)"
fi
log "image $image, $RUNS runs each"

prefix="bench-$$"

# --- create / stop / start / delete -----------------------------------------
# Sizes as "label workers": 1 control plane each, so no load balancer.
sizes=("1:0" "3:2" "5:4")
for run in $(seq 1 "$RUNS"); do
	for size in "${sizes[@]}"; do
		nodes=${size%%:*} workers=${size#*:}
		name="$prefix-n$nodes-r$run"
		clusters+=("$name")
		log "run $run/$RUNS: $nodes node(s): create"
		run_timed "create$nodes" create "$name" --image "$image" \
			--control-planes 1 --workers "$workers" --wait "$CREATE_WAIT"
		if [[ $nodes == 3 ]]; then
			log "run $run/$RUNS: $nodes nodes: stop, start"
			run_timed stop3 stop "$name"
			run_timed start3 start "$name"
		fi
		log "run $run/$RUNS: $nodes node(s): delete"
		run_timed "delete$nodes" delete "$name"
	done
done

# --- list -------------------------------------------------------------------
log "creating 5 clusters for skiff list"
for i in 1 2 3 4 5; do
	name="$prefix-list$i"
	clusters+=("$name")
	run_timed listsetup create "$name" --image "$image" --control-planes 1 --workers 0 --wait 0
done
# Other clusters on a shared engine are listed too; say how many there were.
listed=$("$skiff" list -o json | jq length)
if ! command -v hyperfine >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	log "installing hyperfine"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >&2 ||
		log "could not install hyperfine; timing in a loop"
fi
if command -v hyperfine >/dev/null 2>&1; then
	list_tool="hyperfine (--warmup 3, ≥ 20 runs)"
	hyperfine --style basic --warmup 3 --min-runs 20 -N \
		--export-json "$work/list.json" "$skiff list" >&2
	jq -r '.results[0].times[]' "$work/list.json" >"$work/list.times"
else
	list_tool="$LIST_RUNS timed runs after 3 warm-ups"
	for _ in 1 2 3; do "$skiff" list >/dev/null; done
	for _ in $(seq 1 "$LIST_RUNS"); do run_timed list list; done
fi
# Milliseconds for the table.
awk '{ printf "%.1f\n", $1 * 1000 }' "$work/list.times" >"$work/list.ms"

# --- report -----------------------------------------------------------------
for nodes in 1 3 5; do
	for f in "$work/create$nodes".*.err; do nodes_up_of "$f"; done >"$work/up$nodes.times"
done

echo "Date: $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) CPUs; Docker $(docker version --format '{{.Server.Version}}');" \
	"skiff $(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown); image $image;" \
	"RUNS=$RUNS; create --wait $CREATE_WAIT"
echo
echo "| Operation | Median (s) | Range (s) | Goal |"
echo "|---|---|---|---|"
stat_row "create, 1 node: nodes up" "$work/up1.times"
stat_row "create, 1 node: total" "$work/create1.times"
stat_row "create, 3 nodes (1 cp + 2 workers): nodes up" "$work/up3.times" "< 3 s"
stat_row "create, 3 nodes: total" "$work/create3.times"
stat_row "create, 5 nodes (1 cp + 4 workers): nodes up" "$work/up5.times"
stat_row "create, 5 nodes: total" "$work/create5.times"
stat_row "stop, 3 nodes" "$work/stop3.times"
stat_row "start, 3 nodes (until Ready)" "$work/start3.times"
stat_row "delete, 1 node" "$work/delete1.times"
stat_row "delete, 3 nodes" "$work/delete3.times" "< 2 s"
stat_row "delete, 5 nodes" "$work/delete5.times"
echo
echo "\`skiff list\` with $listed clusters present ($list_tool):"
echo
echo "| Operation | Median (ms) | Range (ms) | Goal |"
echo "|---|---|---|---|"
stat_row "list" "$work/list.ms" "< 50 ms"
echo
echo "\`skiff create\` steps, median seconds (as printed by skiff):"
echo
echo "| Step | 1 node | 3 nodes | 5 nodes |"
echo "|---|---|---|---|"
# Step names in pipeline order, as the 5-node create printed them.
steps_of "$work/create5.1.err" | cut -f1 | while IFS= read -r step; do
	row="| $step |"
	for nodes in 1 3 5; do
		m=$(for f in "$work/create$nodes".*.err; do steps_of "$f"; done |
			awk -F '\t' -v s="$step" '$1 == s { print $2 }' | median)
		row+=" ${m:-–} |"
	done
	echo "$row"
done
