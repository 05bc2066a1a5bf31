#!/usr/bin/env bash
# Benchmark `skiff load` against kind's method, on one 3-node cluster.
#
#   scripts/bench-load.sh [RUNS]      (default 5 runs per measurement)
#
# Measures, with hyperfine, in one run, skiff and kind's method on the same
# cluster (1 control plane, 2 workers):
#   1. cold: a ~150 MB image (one 150 MB layer of random data and a small
#      one) that no node holds;
#   2. inner loop: an image of a ~150 MB base and a new 1 MB top layer,
#      loaded when every node holds the previous version (same base, other
#      top); each run rebuilds it with a fresh top layer first (not timed);
#   3. shared base: five images that share a 100 MB base, each with its
#      own 1 MB layer, loaded in one call, no node holding any of them.
# kind's method is what `kind load docker-image` runs: `docker save` of all
# the images to a temporary tar, then `ctr images import` of it into every
# node concurrently (`docker exec -i`).
# Before each cold run the images are removed from every node with
# `ctr images rm --sync`, so containerd's garbage collector has dropped their
# content and the next import really writes it.
#
# And the floors the rows can be judged by:
#   - the engine's export: `docker save` of the 150 MB image to /dev/null;
#   - the nodes' import: `ctr images import` of the cold image from a file
#     already inside each node, concurrently (kind's method minus transfer);
#   - the node work no import can skip: in every node concurrently, write
#     the 150 MB layer once, hash it once and extract it once.
#
# Images are built offline (`FROM scratch`, classic builder), labelled
# skiff-bench-load=<pid>, and removed on exit with the cluster.
# The results replace the "skiff load" section of docs/benchmarks.md.
# Set SKIFF_BIN to benchmark an existing binary instead of building one, and
# SKIFF_TEST_IMAGE to use another node image.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
runs="${1:-5}"
log() { echo "bench-load: $*" >&2; }

scripts/ensure-docker.sh
missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v bc >/dev/null 2>&1 || missing+=(bc)
if [[ ${#missing[@]} -gt 0 ]]; then
	log "installing ${missing[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [[ -z "${SKIFF_BIN:-}" ]]; then
	log "building skiff (release)"
	cargo build --release --quiet
	SKIFF_BIN="${CARGO_TARGET_DIR:-$repo_root/target}/release/skiff"
fi
if [[ -z "${SKIFF_TEST_IMAGE:-}" ]]; then
	if docker image inspect skiff-test-node:latest >/dev/null 2>&1; then
		SKIFF_TEST_IMAGE=skiff-test-node:latest
	else
		SKIFF_TEST_IMAGE="$(scripts/build-test-node-image.sh | tail -n 1)"
	fi
fi

cluster="bench-load-$$"
label="skiff-bench-load=$$"
work="$(mktemp -d)"
export KUBECONFIG="$work/kubeconfig"
cleanup() {
	"$SKIFF_BIN" delete "$cluster" >/dev/null 2>&1 || true
	docker images -q --filter "label=$label" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

log "creating cluster $cluster (1 control plane, 2 workers) from $SKIFF_TEST_IMAGE"
"$SKIFF_BIN" create "$cluster" --image "$SKIFF_TEST_IMAGE" --workers 2 --quiet >/dev/null
# One control plane: no load balancer, every container is a node.
mapfile -t nodes < <(docker ps --filter "label=io.skiff.cluster=$cluster" --format '{{.Names}}' | sort)

# build NAME FILE...: FROM scratch, one ADD (one layer) per file, offline.
build() {
	local name="$1" dir
	shift
	dir="$(mktemp -d -p "$work")"
	echo "FROM scratch" >"$dir/Dockerfile"
	for file in "$@"; do
		ln "$file" "$dir/$(basename "$file")"
		echo "ADD $(basename "$file") /" >>"$dir/Dockerfile"
	done
	DOCKER_BUILDKIT=0 docker build -q --label "$label" -t "$name" "$dir" >/dev/null 2>&1
	rm -rf "$dir"
}
random() { head -c "$2" /dev/urandom >"$work/$1"; }

log "building the images"
random cold-base.bin 150M
random small.bin 4K
random loop-base.bin 150M
random shared-base.bin 100M
cold="skiff-bench-cold:$$"
loop="skiff-bench-loop:$$"
build "$cold" "$work/cold-base.bin" "$work/small.bin"
shared=()
for i in 1 2 3 4 5; do
	random "own-$i.bin" 1M
	shared+=("skiff-bench-shared-$i:$$")
	build "skiff-bench-shared-$i:$$" "$work/shared-base.bin" "$work/own-$i.bin"
done
size_mb=$(($(docker image inspect -f '{{.Size}}' "$cold") / 1000000))

# next.sh: a new version of the inner-loop image: same base, fresh 1 MB top.
cat >"$work/next.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
head -c 1M /dev/urandom >"$work/top.bin"
$(declare -f build)
label="$label" work="$work"
build "$loop" "$work/loop-base.bin" "$work/top.bin"
EOF
# unload.sh IMAGE...: every name of the images on every node (kind's
# --digests adds an `import-<date>@sha256:…` one, the CRI plugin a
# `sha256:<id>` one), then wait for the garbage collector.
cat >"$work/unload.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
names=()
for image in "$@"; do
	names+=("docker.io/library/$image" "$(docker image inspect -f '{{.Id}}' "$image")")
done
for node in $(docker ps --filter "label=io.skiff.cluster=$CLUSTER" --format '{{.Names}}'); do
	docker exec "$node" sh -c '
		refs=$(ctr -n k8s.io images ls -q | while read -r ref; do
			case "$ref" in import-*) echo "$ref"; continue;; esac
			for n in "$@"; do [ "$ref" = "$n" ] && echo "$ref"; done
		done)
		[ -z "$refs" ] || ctr -n k8s.io images rm --sync $refs >/dev/null' sh "${names[@]}" &
done
wait
EOF
# kind's method, as `kind load docker-image IMAGE...` does it.
cat >"$work/kind-load.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
docker save "$@" -o "$tmp/image.tar"
pids=()
for node in $(docker ps --filter "label=io.skiff.cluster=$CLUSTER" --format '{{.Names}}'); do
	docker exec -i "$node" ctr --namespace=k8s.io images import --all-platforms --digests \
		--snapshotter=overlayfs - <"$tmp/image.tar" >/dev/null &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
EOF
# Floors: the import from a file inside each node; the least node work.
cat >"$work/local-import.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
for node in "$@"; do
	docker exec "$node" ctr --namespace=k8s.io images import --snapshotter=overlayfs /var/tmp/bench-load.tar >/dev/null &
done
wait
EOF
cat >"$work/node-floor.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
for node in "$@"; do
	docker exec "$node" sh -c 'd=/var/lib/containerd/bench-floor; rm -rf $d; mkdir -p $d/x
		cat /var/tmp/bench-layer.tar >$d/blob && sha256sum $d/blob >/dev/null && tar -C $d/x -xf $d/blob
		rm -rf $d' &
done
wait
EOF
# The cold path's parts, one at a time: 150 MB to every node by exec stdin
# and by the archive API (what skiff uses), and written with and without fsync.
cat >"$work/by-exec.sh" <<'EOF'
#!/usr/bin/env bash
for node in "${@:2}"; do docker exec -i "$node" sh -c 'cat >/dev/null' <"$1" & done
wait
EOF
cat >"$work/by-archive.sh" <<'EOF'
#!/usr/bin/env bash
for node in "${@:2}"; do
	tar -C "$(dirname "$1")" -cf - "$(basename "$1")" | docker cp - "$node:/var/tmp/" &
done
wait
EOF
cat >"$work/write.sh" <<'EOF'
#!/usr/bin/env bash
for node in "${@:2}"; do
	docker exec "$node" sh -c "dd if=/var/tmp/bench-layer.tar of=/var/lib/containerd/bench-dd bs=1M $1 status=none; rm -f /var/lib/containerd/bench-dd" &
done
wait
EOF
chmod +x "$work"/*.sh
export CLUSTER="$cluster"
docker save "$cold" -o "$work/cold.tar"
mkdir "$work/cold" && tar -C "$work/cold" -xf "$work/cold.tar"
big_layer=$(find "$work/cold" -name layer.tar -size +100M)
for node in "${nodes[@]}"; do
	docker cp "$work/cold.tar" "$node:/var/tmp/bench-load.tar"
	docker cp "$big_layer" "$node:/var/tmp/bench-layer.tar"
done
mv "$big_layer" "$work/layer.bin"
rm -rf "$work/cold" "$work/cold.tar"

skiff="$SKIFF_BIN load --quiet --cluster $cluster"
hf() { hyperfine --style basic --runs "$runs" "$@" >&2; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

log "1. cold load of $cold"
hf --export-json "$work/cold-skiff.json" --prepare "$work/unload.sh $cold" -n skiff "$skiff $cold"
hf --export-json "$work/cold-kind.json" --prepare "$work/unload.sh $cold" -n kind "$work/kind-load.sh $cold"

log "2. inner loop: rebuilt $loop, previous version on every node"
"$work/next.sh" && $skiff "$loop"
hf --export-json "$work/loop-skiff.json" --prepare "$work/next.sh" -n skiff "$skiff $loop"
"$work/next.sh" && "$work/kind-load.sh" "$loop"
hf --export-json "$work/loop-kind.json" --prepare "$work/next.sh" -n kind "$work/kind-load.sh $loop"

log "3. five images sharing a 100 MB base"
hf --export-json "$work/shared-skiff.json" --prepare "$work/unload.sh ${shared[*]}" -n skiff "$skiff ${shared[*]}"
hf --export-json "$work/shared-kind.json" --prepare "$work/unload.sh ${shared[*]}" -n kind "$work/kind-load.sh ${shared[*]}"

log "floors"
hf --export-json "$work/floor-save.json" -n "docker save" "docker save $cold >/dev/null"
hf --export-json "$work/floor-import.json" --prepare "$work/unload.sh $cold" -n "ctr import inside" \
	"$work/local-import.sh ${nodes[*]}"
hf --export-json "$work/floor-node.json" -n "write, hash, extract" "$work/node-floor.sh ${nodes[*]}"
hf --export-json "$work/floor-probe.json" -n "skiff load, all present" "$skiff $cold"
hf --export-json "$work/part-exec.json" -n "exec stdin" "$work/by-exec.sh $work/layer.bin ${nodes[*]}"
hf --export-json "$work/part-archive.json" -n "archive API" "$work/by-archive.sh $work/layer.bin ${nodes[*]}"
hf --export-json "$work/part-fsync.json" -n "write + fsync" "$work/write.sh conv=fsync ${nodes[*]}"
hf --export-json "$work/part-nofsync.json" -n "write" "$work/write.sh status=none ${nodes[*]}"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { jq -r '.results[0].median' "$work/$1.json"; }
range() { jq -r '"\(.results[0].min * 100 | round / 100)–\(.results[0].max * 100 | round / 100)"' "$work/$1.json"; }
ratio() { printf '%.2f' "$(echo "scale=4; $(median "$2") / $(median "$1")" | bc)"; }
s() { printf '%.2f' "$(median "$1")"; }
row() { # label, file stem, goal
	echo "| $1 | $(s "$2-skiff") ($(range "$2-skiff")) | $(s "$2-kind") ($(range "$2-kind")) | **$(ratio "$2-skiff" "$2-kind")x** | $3 |"
}

containerd_version=$(docker exec "${nodes[0]}" ctr --version | awk '{print $NF}')
section="$(
	cat <<EOF
## skiff load

Command: \`scripts/bench-load.sh ${runs}\` (${runs} runs per row), $(date -u +%Y-%m-%dT%H:%MZ),
skiff at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo -dirty), one cluster of 3 nodes (1 control plane, 2 workers),
$(nproc) CPUs, $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1048576)) GiB, Docker $(docker version -f '{{.Server.Version}}'),
containerd ${containerd_version} in the nodes. Host load average ${load_before} before, ${load_after} after.

Median seconds (range), skiff against kind's method (\`docker save\` of the
images to a temporary tar, then \`ctr images import\` of it into every node
concurrently), in the same run:

| Row | skiff load | kind's method | kind / skiff | Goal |
|---|---|---|---|---|
$(row "cold: one ${size_mb} MB image" cold "≥ 1.5x")
$(row "inner loop: 150 MB base + new 1 MB layer, previous version loaded" loop "≥ 5x, < 1.5 s")
$(row "five images sharing a 100 MB base, one call" shared "≥ 3x")

Floors, median seconds (range):

| What | Median |
|---|---|
| the engine's export alone: \`docker save\` of the ${size_mb} MB image to /dev/null | $(s floor-save) ($(range floor-save)) |
| \`skiff load\` of an image every node holds (resolve + one probe exec per node) | $(s floor-probe) ($(range floor-probe)) |
| \`ctr images import\` of the cold image from a file inside each node, concurrently | $(s floor-import) ($(range floor-import)) |
| in every node concurrently: write the 150 MB layer once, sha256 it once, extract it once | $(s floor-node) ($(range floor-node)) |
| the 150 MB layer to every node through \`docker exec -i\` stdin (to /dev/null) | $(s part-exec) ($(range part-exec)) |
| the 150 MB layer to every node through the archive API (\`docker cp -\`, into /var) | $(s part-archive) ($(range part-archive)) |
| in every node concurrently: write the 150 MB layer to containerd's disk, with fsync | $(s part-fsync) ($(range part-fsync)) |
| the same without fsync | $(s part-nofsync) ($(range part-nofsync)) |
EOF
)"

doc=docs/benchmarks.md
if [[ ! -f "$doc" ]]; then
	printf '# Benchmarks\n\nEach section is written by the script it names.\n' >"$doc"
fi
# Replace our section (from its heading to the next `## `), or append it.
# Prose after the generated part (analysis) lives under "### " headings
# inside the section and is kept.
SECTION="$section" awk '
	/^## / { skipping = 0 }
	/^## skiff load$/ { print ENVIRON["SECTION"] "\n"; printed = 1; skipping = 1; next }
	skipping && /^### / { skipping = 0 }
	!skipping { print }
	END { if (!printed) print "\n" ENVIRON["SECTION"] }
' "$doc" >"$work/benchmarks.md"
mv "$work/benchmarks.md" "$doc"
log "written to $doc"
echo "$section"
