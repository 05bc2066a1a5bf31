#!/usr/bin/env bash
# Benchmark `skiff load` against kind's method, on one 3-node cluster.
#
#   scripts/bench-load.sh [RUNS]      (default 5 runs per cold measurement)
#
# Measures, with hyperfine, in one run:
#   1. `skiff load` of a ~150 MB image that no node holds (cold);
#   2. kind's method on another ~150 MB image that no node holds: `docker
#      save` to a temporary tar, then `docker exec -i NODE ctr ... import -`
#      of that file into every node concurrently (what `kind load
#      docker-image` runs);
#   3. `skiff load` again of an image every node already holds;
#   4. the floor: the same `ctr images import` from a file already inside
#      each node, i.e. the node-side work alone.
# Before each cold run the image is removed from every node with
# `ctr images rm --sync`, so containerd's garbage collector has dropped its
# content and the next import really writes it.
#
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
skiff_image="skiff-bench-load-skiff:$$"
kind_image="skiff-bench-load-kind:$$"
work="$(mktemp -d)"
cleanup() {
	"$SKIFF_BIN" delete "$cluster" >/dev/null 2>&1 || true
	docker rmi -f "$skiff_image" "$kind_image" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

log "creating cluster $cluster (1 control plane, 2 workers) from $SKIFF_TEST_IMAGE"
"$SKIFF_BIN" create "$cluster" --image "$SKIFF_TEST_IMAGE" --workers 2 --quiet >/dev/null
# One control plane: no load balancer, every container is a node.
mapfile -t nodes < <(docker ps --filter "label=io.skiff.cluster=$cluster" --format '{{.Names}}' | sort)

# Two images of random (incompressible) data, so they share no layer.
make_image() {
	mkdir -p "$work/$2"
	head -c 150M /dev/urandom >"$work/$2/data.bin"
	tar -C "$work/$2" -c . | docker import - "$1" >/dev/null
	rm -rf "${work:?}/$2"
}
log "building two ~150 MB images"
make_image "$skiff_image" skiff
make_image "$kind_image" kind
size_mb=$(($(docker image inspect -f '{{.Size}}' "$skiff_image") / 1000000))

# Removes every name of an image from every node (kind's --digests adds an
# `import-<date>@sha256:…` one, the CRI plugin a `sha256:<id>` one), then
# waits for the garbage collector.
cat >"$work/unload.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
image="$1" id="$2"; shift 2
for node in "$@"; do
	docker exec "$node" sh -c '
		refs=$(ctr -n k8s.io images ls | awk -v name="$1" -v id="$2" \
			"NR > 1 && (\$1 == name || \$1 == id || (\$1 ~ /^import-/))" | cut -d" " -f1)
		[ -z "$refs" ] || ctr -n k8s.io images rm --sync $refs >/dev/null' sh "docker.io/library/$image" "$id" &
done
wait
EOF
# kind's method, as `kind load docker-image` does it.
cat >"$work/kind-load.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
image="$1"; shift
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
docker save "$image" -o "$tmp/image.tar"
pids=()
for node in "$@"; do
	docker exec -i "$node" ctr --namespace=k8s.io images import --all-platforms --digests \
		--snapshotter=overlayfs - <"$tmp/image.tar" >/dev/null &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
EOF
# The floor: the same import from a file already inside each node, so no
# transfer at all. No method that runs `ctr images import` can beat it.
cat >"$work/local-import.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
pids=()
for node in "$@"; do
	docker exec "$node" ctr --namespace=k8s.io images import /var/tmp/bench-load.tar >/dev/null &
	pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
EOF
chmod +x "$work/unload.sh" "$work/kind-load.sh" "$work/local-import.sh"
docker save "$kind_image" -o "$work/image.tar"
for node in "${nodes[@]}"; do docker cp "$work/image.tar" "$node:/var/tmp/bench-load.tar"; done
rm "$work/image.tar"
skiff_id=$(docker image inspect -f '{{.Id}}' "$skiff_image")
kind_id=$(docker image inspect -f '{{.Id}}' "$kind_image")

skiff_cmd="$SKIFF_BIN load --quiet $skiff_image --cluster $cluster"
kind_cmd="$work/kind-load.sh $kind_image ${nodes[*]}"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "cold loads: $runs runs each"
hyperfine --style basic --runs "$runs" --export-json "$work/cold.json" \
	--prepare "$work/unload.sh $skiff_image $skiff_id ${nodes[*]}" -n "skiff load" "$skiff_cmd" \
	--prepare "$work/unload.sh $kind_image $kind_id ${nodes[*]}" -n "kind's method" "$kind_cmd" \
	--prepare "$work/unload.sh $kind_image $kind_id ${nodes[*]}" -n "import from inside the nodes" \
	"$work/local-import.sh ${nodes[*]}" >&2

log "repeat load of an image every node holds"
$skiff_cmd
hyperfine --style basic --warmup 1 --runs 10 --export-json "$work/repeat.json" -n "skiff load (present)" \
	"$skiff_cmd" >&2

median() { jq -r ".results[$2].median" "$1"; }
stddev() { jq -r ".results[$2].stddev // 0" "$1"; }
skiff_s=$(median "$work/cold.json" 0)
kind_s=$(median "$work/cold.json" 1)
floor_s=$(median "$work/cold.json" 2)
repeat_s=$(median "$work/repeat.json" 0)
speedup=$(printf '%.2f' "$(echo "scale=4; $kind_s / $skiff_s" | bc)")
fmt() { printf '%.2f s (± %.2f)' "$1" "$2"; }

containerd_version=$(docker exec "${nodes[0]}" ctr --version | awk '{print $NF}')
section="$(
	cat <<EOF
## skiff load

Loading one ${size_mb} MB image (random data, one layer) into a 3-node cluster
(1 control plane, 2 workers) from the Engine, median of ${runs} cold runs
(the image removed from every node with \`ctr images rm --sync\` before each):

| method | median |
|--------|--------|
| \`skiff load IMAGE\` (one export, streamed to all nodes at once) | $(fmt "$skiff_s" "$(stddev "$work/cold.json" 0)") |
| kind's method (\`docker save\` to a temp file, then \`docker exec -i NODE ctr images import -\` into each node concurrently) | $(fmt "$kind_s" "$(stddev "$work/cold.json" 1)") |
| \`skiff load IMAGE\` again, every node already holding it | $(fmt "$repeat_s" "$(stddev "$work/repeat.json" 0)") |
| floor: \`ctr images import\` of a file already inside each node, concurrently (no transfer at all) | $(fmt "$floor_s" "$(stddev "$work/cold.json" 2)") |

skiff is **${speedup}x** as fast as kind's method on a cold load. Both spend
most of their time in the nodes' \`ctr images import\` (the floor row): on
this host no transport can make a cold load much faster than that.

Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs, $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1048576)) GiB,
Docker $(docker version -f '{{.Server.Version}}'), containerd ${containerd_version} in the nodes (host load
average ${load_before} before the runs), with:

    scripts/bench-load.sh ${runs}
EOF
)"

doc=docs/benchmarks.md
if [[ ! -f "$doc" ]]; then
	printf '# Benchmarks\n\nEach section is written by the script it names.\n' >"$doc"
fi
# Replace our section (from its heading to the next `## `), or append it.
SECTION="$section" awk '
	/^## / { skipping = 0 }
	/^## skiff load$/ { print ENVIRON["SECTION"] "\n"; printed = 1; skipping = 1; next }
	!skipping { print }
	END { if (!printed) print "\n" ENVIRON["SECTION"] }
' "$doc" >"$work/benchmarks.md"
mv "$work/benchmarks.md" "$doc"
log "skiff ${skiff_s}s, kind's method ${kind_s}s (${speedup}x), repeat ${repeat_s}s; written to $doc"
