#!/usr/bin/env bash
# Build skiff's offline TEST load-balancer image and print its reference as the
# last line on stdout (progress goes to stderr).
#
# skiff's real default LB image (kindest/haproxy, pinned by digest) cannot be
# pulled where skiff is tested: no registry is reachable. This image behaves
# like it, and is at least as strict: PID 1 is
# `haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg` (master-worker,
# foreground), a placeholder config is present at start, skiff overwrites
# that file and signals PID 1 to reload, SIGUSR1 (soft stop) is the stop
# signal, and, like the distroless kindest/haproxy, it has no shell: nothing
# but haproxy and the libraries it links. (kindest/haproxy also carries
# `cp`, `mkdir` and `kill`; this double has none of them, so skiff cannot
# come to depend on them.)
#
# The files come from the test node image (Debian's haproxy is installed in
# its rootfs), copied out by one short-lived container, and go into a single
# layer: the archive `docker load` reads is self-contained, so it loads the
# same with the classic and with the containerd image store. The tag hashes
# this script, images/test-lb/ and the node image; an existing tag is reused.
#
# IMAGE_REPO (default skiff-test-lb) names the repository, so a build can be
# tried without replacing the image others use.
set -euo pipefail

readonly IMAGE_REPO=${IMAGE_REPO:-skiff-test-lb}

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

# haproxy and every library it links, dereferenced, read out of the node
# image by a container that only runs there (the node image has a shell).
rootfs="$work/rootfs"
mkdir -p "$rootfs"
haproxy_bin=/usr/sbin/haproxy
docker run --rm --name "skiff-test-lb-build-$$" --network none --entrypoint sh "$node_ref" -c \
	"ldd $haproxy_bin | awk '\$2 == \"=>\" && \$3 ~ /^\// { print \$3 } \$1 ~ /^\// { print \$1 }' |
	 xargs tar -chf - $haproxy_bin" | tar -C "$rootfs" -xf -
[[ -x "$rootfs$haproxy_bin" ]] || {
	log "haproxy was not copied out of $node_ref"
	exit 1
}
cp -a "$src/rootfs/." "$rootfs/"
# What a distroless base has besides the program: users and an empty /tmp.
mkdir -p "$rootfs/etc" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
for shell in sh bash dash; do
	for dir in bin usr/bin sbin usr/sbin; do
		if [[ -e "$rootfs/$dir/$shell" ]]; then
			log "BUG: $dir/$shell ended up in the image"
			exit 1
		fi
	done
done

# A `docker save` archive (Docker 20.10's import/commit --change cannot set
# STOPSIGNAL), holding its only layer.
mkdir -p "$work/image/lb"
tar -C "$rootfs" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf "$work/image/lb/layer.tar" .
lb_sha="$(sha256sum "$work/image/lb/layer.tar" | cut -d' ' -f1)"

arch="$(docker image inspect --format '{{.Architecture}}' "$node_ref")"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cat >"$work/config.json" <<EOF
{
  "architecture": "$arch",
  "os": "linux",
  "created": "$created",
  "config": {
    "Entrypoint": ["$haproxy_bin", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "StopSignal": "SIGUSR1",
    "Labels": {"io.skiff.test-image": "lb", "io.skiff.test-image.inputs": "$tag"}
  },
  "rootfs": {"type": "layers", "diff_ids": ["sha256:$lb_sha"]},
  "history": [
    {"created": "$created", "created_by": "scripts/build-test-lb-image.sh (skiff TEST load balancer: haproxy from $node_ref, no shell; inputs $tag)"}
  ]
}
EOF
config_sha="$(sha256sum "$work/config.json" | cut -d' ' -f1)"
mv "$work/config.json" "$work/image/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["lb/layer.tar"]}]\n' "$config_sha" "$ref" >"$work/image/manifest.json"

log "loading $ref"
tar -C "$work/image" -cf - manifest.json "$config_sha.json" lb/layer.tar | docker load >/dev/null
docker tag "$ref" "$IMAGE_REPO:latest"

docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" |
	grep -vxF -e "$ref" -e "$IMAGE_REPO:latest" |
	xargs -r docker image rm >/dev/null 2>&1 || true

log "built $ref"
echo "$ref"
