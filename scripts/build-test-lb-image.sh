#!/usr/bin/env bash
# Build skiff's offline TEST load-balancer image and print its reference as the
# last line on stdout (progress goes to stderr).
#
# skiff's real default LB image (kindest/haproxy, pinned by digest) cannot be
# pulled where skiff is tested: no registry is reachable. This image behaves
# like it: PID 1 is `haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg`
# (master-worker, foreground), a placeholder config is present at start, skiff
# overwrites that file and signals PID 1 to reload, and SIGUSR1 (soft stop) is
# the stop signal.
#
# It is the test node image (whose rootfs carries Debian's haproxy) plus one
# small layer with images/test-lb/rootfs/, so it costs no extra disk. The tag
# hashes this script, images/test-lb/ and the node image it builds on; an
# existing tag is reused as is.
set -euo pipefail

readonly IMAGE_REPO=skiff-test-lb

log() { echo "build-test-lb-image: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/images/test-lb"

# Builds (or finds) the node image; ensures docker on the way.
node_ref="$("$repo_root/scripts/build-test-node-image.sh" | tail -n 1)"
node_id="$(docker image inspect --format '{{.Id}}' "$node_ref")"

inputs_hash() {
	local f x
	(
		cd "$repo_root"
		echo "base $node_id"
		{
			echo scripts/build-test-lb-image.sh
			find images/test-lb -type f | LC_ALL=C sort
		} | while IFS= read -r f; do
			if [[ -x "$f" ]]; then x=x; else x=-; fi
			printf '%s %s %s\n' "$f" "$x" "$(sha256sum <"$f" | cut -d' ' -f1)"
		done
	) | sha256sum | cut -c1-12
}

tag="$(inputs_hash)"
ref="$IMAGE_REPO:$tag"

if docker image inspect "$ref" >/dev/null 2>&1; then
	log "$ref is up to date"
	echo "$ref"
	exit 0
fi

work="$(mktemp -d /var/tmp/skiff-test-lb.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Like the node image, write a `docker save` archive and `docker load` it:
# Docker 20.10's import/commit --change cannot set STOPSIGNAL. The base layers
# are listed but not shipped: `docker load` skips reading a layer whose chain
# already exists in the engine, and the node image guarantees that.
mapfile -t base_layers < <(docker image inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "$node_ref" | grep -v '^$')
mkdir -p "$work/lb"
tar -C "$src/rootfs" --owner=0 --group=0 --numeric-owner -cf "$work/lb/layer.tar" .
lb_sha="$(sha256sum "$work/lb/layer.tar" | cut -d' ' -f1)"

diff_ids="" layers=""
for i in "${!base_layers[@]}"; do
	diff_ids+="\"${base_layers[$i]}\", "
	layers+="\"base$i/layer.tar\", "
done
diff_ids+="\"sha256:$lb_sha\""
layers+="\"lb/layer.tar\""

arch="$(docker image inspect --format '{{.Architecture}}' "$node_ref")"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cat >"$work/config.json" <<EOF
{
  "architecture": "$arch",
  "os": "linux",
  "created": "$created",
  "config": {
    "Entrypoint": ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "StopSignal": "SIGUSR1",
    "Labels": {"io.skiff.test-image": "lb", "io.skiff.test-image.inputs": "$tag"}
  },
  "rootfs": {"type": "layers", "diff_ids": [$diff_ids]},
  "history": [
    {"created": "$created", "created_by": "skiff TEST node image $node_ref"},
    {"created": "$created", "created_by": "scripts/build-test-lb-image.sh (skiff TEST load balancer, inputs $tag)"}
  ]
}
EOF
config_sha="$(sha256sum "$work/config.json" | cut -d' ' -f1)"
mv "$work/config.json" "$work/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]\n' "$config_sha" "$ref" "$layers" >"$work/manifest.json"

log "loading $ref (on top of $node_ref)"
tar -C "$work" -cf - manifest.json "$config_sha.json" lb/layer.tar | docker load >/dev/null
docker tag "$ref" "$IMAGE_REPO:latest"

docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" |
	grep -vxF -e "$ref" -e "$IMAGE_REPO:latest" |
	xargs -r docker image rm >/dev/null 2>&1 || true

log "built $ref"
echo "$ref"
