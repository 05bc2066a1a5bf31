#!/usr/bin/env bash
# Build skiff's offline TEST node image and print its reference as the last
# line on stdout (progress goes to stderr).
#
# No container registry is reachable where skiff is developed and tested, so
# kindest/node cannot be pulled. This builds a stand-in node image from Debian
# packages only: debootstrap a bookworm rootfs with systemd + containerd, add
# the files under images/test-node/rootfs/, and `docker import` it. See
# images/test-node/README.md for what the image contains (and what it fakes).
#
# The tag is derived from the inputs (this script + everything under
# images/test-node/), so an existing tag means an up-to-date image and nothing
# is rebuilt. The debootstrap result is cached under ~/.cache/skiff-test/,
# keyed by the package list, so changing only the overlay files or this script
# rebuilds in seconds.
set -euo pipefail

readonly IMAGE_REPO=skiff-test-node

log() { echo "build-test-node-image: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/images/test-node"
# shellcheck source=lib/debian-rootfs.sh
source "$repo_root/scripts/lib/debian-rootfs.sh"

"$repo_root/scripts/ensure-docker.sh"

# The tag: a hash of every input (this script, the shared helpers and
# everything under images/test-node/).
inputs_hash() {
	{
		echo scripts/build-test-node-image.sh
		echo scripts/lib/debian-rootfs.sh
		(cd "$repo_root" && find images/test-node -type f | LC_ALL=C sort)
	} | files_hash "$repo_root"
}

tag="$(inputs_hash)"
ref="$IMAGE_REPO:$tag"

if docker image inspect "$ref" >/dev/null 2>&1; then
	log "$ref is up to date"
	echo "$ref"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	log "building the rootfs needs root (debootstrap, device nodes, file ownership)"
	exit 1
fi

work="$(mktemp -d /var/tmp/skiff-test-node.XXXXXX)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
rootfs="$work/rootfs"
debian_rootfs "$(package_list "$src/packages.txt")" "$rootfs" test-node

# --- customise --------------------------------------------------------------
log "adding images/test-node/rootfs and configuring systemd"
# Copy as root-owned files without touching the metadata of existing dirs.
tar -C "$src/rootfs" --owner=0 --group=0 --numeric-owner -cf - . |
	tar -C "$rootfs" --no-overwrite-dir -xf -

node_systemd_setup "$rootfs"
sysd="$rootfs/etc/systemd/system"
# haproxy is in the rootfs for the LB test image only; the node must not run it.
rm -f "$sysd/multi-user.target.wants/haproxy.service"
# Likewise docker-registry: only the registry add-on test runs it, as its own container.
rm -f "$sysd/multi-user.target.wants/docker-registry.service"
ln -sfn /etc/systemd/system/kubelet.service "$sysd/multi-user.target.wants/kubelet.service"

# --- import -----------------------------------------------------------------
log "loading $ref"
load_rootfs "$rootfs" "$ref" '{
    "Entrypoint": ["/usr/local/bin/entrypoint", "/sbin/init"],
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=docker"],
    "StopSignal": "SIGRTMIN+3",
    "Labels": {"io.skiff.test-image": "node", "io.skiff.test-image.inputs": "'"$tag"'"}
  }'
docker tag "$ref" "$IMAGE_REPO:latest"
drop_stale_images "$IMAGE_REPO" "$ref" "$IMAGE_REPO:latest"

log "built $ref"
echo "$ref"
