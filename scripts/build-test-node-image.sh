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

readonly SUITE=bookworm
readonly MIRROR="${SKIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump to invalidate cached rootfs tarballs when the way they are made changes.
readonly ROOTFS_CACHE_FORMAT=1
readonly IMAGE_REPO=skiff-test-node

log() { echo "build-test-node-image: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/images/test-node"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/skiff-test"

"$repo_root/scripts/ensure-docker.sh"

# --- input hash -> image tag -------------------------------------------------
# Path, executable bit and content of every input, in a stable order.
inputs_hash() {
	local f
	(
		cd "$repo_root"
		{
			echo scripts/build-test-node-image.sh
			find images/test-node -type f | LC_ALL=C sort
		} | while IFS= read -r f; do
			if [[ -x "$f" ]]; then x=x; else x=-; fi
			printf '%s %s %s\n' "$f" "$x" "$(sha256sum <"$f" | cut -d' ' -f1)"
		done
	) | sha256sum | cut -c1-12
}

# Package names from packages.txt (comments and blank lines dropped).
package_list() {
	sed -e 's/#.*//' -e 's/[[:space:]]//g' "$src/packages.txt" | grep -v '^$' | paste -sd, -
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

packages="$(package_list)"
rootfs_key="$(printf '%s\n' "$ROOTFS_CACHE_FORMAT" "$SUITE" minbase "$packages" | sha256sum | cut -c1-16)"
rootfs_tar="$cache_dir/rootfs-$SUITE-$rootfs_key.tar"

work="$(mktemp -d /var/tmp/skiff-test-node.XXXXXX)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs" "$cache_dir/debs"

# --- base rootfs (cached) ---------------------------------------------------
if [[ -f "$rootfs_tar" ]]; then
	log "using cached rootfs $rootfs_tar"
else
	log "debootstrap $SUITE (minbase + $(tr ',' '\n' <<<"$packages" | wc -l) packages); takes a minute or two"
	start=$SECONDS
	# --cache-dir keeps the downloaded .debs, so a package-list change only
	# downloads what is new. One retry for transient mirror hiccups.
	attempt=1
	until debootstrap --variant=minbase --include="$packages" \
		--cache-dir="$cache_dir/debs" \
		"$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1; do
		if [[ $attempt -ge 2 ]]; then
			tail -n 40 "$work/debootstrap.log" >&2
			log "debootstrap failed"
			exit 1
		fi
		log "debootstrap failed, retrying"
		attempt=$((attempt + 1))
		rm -rf "$rootfs" && mkdir -p "$rootfs"
	done
	log "debootstrap took $((SECONDS - start))s"
	# Nothing in the node ever runs apt: drop package caches and lists, and
	# docs nobody reads in a test node.
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
		"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
		"$rootfs"/usr/share/locale/*
	tar --numeric-owner -C "$rootfs" -cf "$rootfs_tar.tmp" .
	mv "$rootfs_tar.tmp" "$rootfs_tar"
	# Keep the cache from growing without bound: other package lists' rootfs.
	find "$cache_dir" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -name "$(basename "$rootfs_tar")" -delete
	rm -rf "$rootfs" && mkdir -p "$rootfs"
fi
tar --numeric-owner -C "$rootfs" -xf "$rootfs_tar"

# --- customise --------------------------------------------------------------
log "adding images/test-node/rootfs and configuring systemd"
# Copy as root-owned files without touching the metadata of existing dirs.
tar -C "$src/rootfs" --owner=0 --group=0 --numeric-owner -cf - . |
	tar -C "$rootfs" --no-overwrite-dir -xf -

sysd="$rootfs/etc/systemd/system"
# Units that make no sense in a container node (consoles, udev, kernel module
# loading and kernel filesystems that belong to the host, periodic
# maintenance) or only slow the boot down. Masking beats disabling: nothing
# can pull them in.
masked=(
	getty.target getty@tty1.service console-getty.service serial-getty@.service
	systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
	systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service
	systemd-modules-load.service systemd-remount-fs.service systemd-firstboot.service
	systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount
	sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
	sys-fs-fuse-connections.mount dev-hugepages.mount
	systemd-journald-audit.socket systemd-pstore.service systemd-logind.service
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
	e2scrub_all.timer e2scrub_reap.service fstrim.timer
)
for unit in "${masked[@]}"; do
	ln -sfn /dev/null "$sysd/$unit"
done
# haproxy is in the rootfs for the LB test image only; the node must not run it.
rm -f "$sysd/multi-user.target.wants/haproxy.service" "$sysd/multi-user.target.wants/remote-fs.target"
# Likewise docker-registry: only the registry add-on test runs it, as its own container.
rm -f "$sysd/multi-user.target.wants/docker-registry.service"
rm -rf "$sysd/getty.target.wants" "$sysd/timers.target.wants" "$sysd/sysinit.target.wants/systemd-pstore.service"
ln -sfn /lib/systemd/system/multi-user.target "$sysd/default.target"
mkdir -p "$sysd/multi-user.target.wants"
ln -sfn /lib/systemd/system/containerd.service "$sysd/multi-user.target.wants/containerd.service"
ln -sfn /etc/systemd/system/kubelet.service "$sysd/multi-user.target.wants/kubelet.service"

# Empty machine-id: the entrypoint generates one per node container.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
ln -sfn /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
# Docker bind-mounts these; don't ship the build host's.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

# kind's node images keep CNI plugins in /opt/cni/bin; Debian's are in /usr/lib/cni.
mkdir -p "$rootfs/opt/cni"
ln -sfn /usr/lib/cni "$rootfs/opt/cni/bin"
mkdir -p "$rootfs/etc/kubernetes/manifests" "$rootfs/etc/cni/net.d" "$rootfs/var/log/journal" \
	"$rootfs/var/lib/kubelet" "$rootfs/kind"
chmod 755 "$rootfs/kind"

# --- import -----------------------------------------------------------------
# `docker import --change` of Docker 20.10 (Debian's docker.io) rejects
# STOPSIGNAL, and systemd needs SIGRTMIN+3 to shut down (SIGTERM makes it
# re-execute). So instead of importing we write a one-layer `docker save`
# archive ourselves (manifest.json + config + layer.tar) and `docker load` it;
# that sets every config field on any engine version.
log "loading $ref"
archive="$work/archive"
mkdir -p "$archive/layer"
tar --numeric-owner -C "$rootfs" -cf "$archive/layer/layer.tar" .
rm -rf "$rootfs"
layer_sha="$(sha256sum "$archive/layer/layer.tar" | cut -d' ' -f1)"
arch="$(dpkg --print-architecture)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cat >"$archive/config.json" <<EOF
{
  "architecture": "$arch",
  "os": "linux",
  "created": "$created",
  "config": {
    "Entrypoint": ["/usr/local/bin/entrypoint", "/sbin/init"],
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=docker"],
    "StopSignal": "SIGRTMIN+3",
    "Labels": {"io.skiff.test-image": "node", "io.skiff.test-image.inputs": "$tag"}
  },
  "rootfs": {"type": "layers", "diff_ids": ["sha256:$layer_sha"]},
  "history": [{"created": "$created", "created_by": "scripts/build-test-node-image.sh (skiff TEST node image, inputs $tag)"}]
}
EOF
config_sha="$(sha256sum "$archive/config.json" | cut -d' ' -f1)"
mv "$archive/config.json" "$archive/$config_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]\n' \
	"$config_sha" "$ref" >"$archive/manifest.json"
tar -C "$archive" -cf - manifest.json "$config_sha.json" layer/layer.tar | docker load >/dev/null
docker tag "$ref" "$IMAGE_REPO:latest"

# Drop stale test node images (best effort: images still used by containers stay).
docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" |
	grep -vxF -e "$ref" -e "$IMAGE_REPO:latest" |
	xargs -r docker image rm >/dev/null 2>&1 || true

log "built $ref"
echo "$ref"
