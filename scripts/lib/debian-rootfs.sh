# shellcheck shell=bash
# Helpers shared by the scripts that build images offline from Debian
# packages (scripts/build-test-node-image.sh, scripts/build-real-node-image.sh).
# Source it; it defines functions only.
#
# No container registry is reachable where skiff is developed and tested, so
# every image its tests run is made here: a debootstrap'ed rootfs (cached by
# package list), customised, then written as a one-layer `docker save`
# archive and `docker load`ed. Docker 20.10's `docker import --change`
# rejects STOPSIGNAL, which systemd needs, so images are never imported.

DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${SKIFF_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump to invalidate cached rootfs tarballs when the way they are made changes.
ROOTFS_CACHE_FORMAT=1
SKIFF_TEST_CACHE="${SKIFF_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff-test}"

# Package names from a packages.txt file (comments and blank lines dropped),
# comma-separated.
package_list() {
	sed -e 's/#.*//' -e 's/[[:space:]]//g' "$1" | grep -v '^$' | paste -sd, -
}

# Hash of the path, executable bit and content of every file named on stdin
# (relative to $1), 12 hex digits.
files_hash() {
	local root=$1 f x
	(
		cd "$root"
		while IFS= read -r f; do
			if [[ -x "$f" ]]; then x=x; else x=-; fi
			printf '%s %s %s\n' "$f" "$x" "$(sha256sum <"$f" | cut -d' ' -f1)"
		done
	) | sha256sum | cut -c1-12
}

# debian_rootfs PACKAGES DEST NAME: unpack a minbase debootstrap of
# $DEBIAN_SUITE with PACKAGES (comma-separated) into DEST, from the cache
# when it has one for this list. NAME tells cache files of different
# scripts apart, so they do not evict each other.
debian_rootfs() {
	local packages=$1 dest=$2 name=$3 key tar attempt start
	key="$(printf '%s\n' "$ROOTFS_CACHE_FORMAT" "$DEBIAN_SUITE" minbase "$packages" | sha256sum | cut -c1-16)"
	tar="$SKIFF_TEST_CACHE/rootfs-$name-$DEBIAN_SUITE-$key.tar"
	mkdir -p "$dest" "$SKIFF_TEST_CACHE/debs"
	if [[ ! -f "$tar" ]]; then
		log "debootstrap $DEBIAN_SUITE for $name (minbase + $(tr ',' '\n' <<<"$packages" | wc -l) packages); takes a minute or two"
		start=$SECONDS
		attempt=1
		# --cache-dir keeps the downloaded .debs, so a package-list change only
		# downloads what is new. One retry for transient mirror hiccups.
		until debootstrap --variant=minbase --include="$packages" \
			--cache-dir="$SKIFF_TEST_CACHE/debs" \
			"$DEBIAN_SUITE" "$dest" "$DEBIAN_MIRROR" >"$dest.debootstrap.log" 2>&1; do
			if [[ $attempt -ge 2 ]]; then
				tail -n 40 "$dest.debootstrap.log" >&2
				log "debootstrap failed"
				return 1
			fi
			log "debootstrap failed, retrying"
			attempt=$((attempt + 1))
			rm -rf "$dest" && mkdir -p "$dest"
		done
		log "debootstrap took $((SECONDS - start))s"
		# Nothing in these images ever runs apt: drop package caches and lists,
		# and docs nobody reads in a container.
		rm -rf "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin \
			"$dest"/var/lib/apt/lists/* "$dest"/var/log/*.log \
			"$dest"/usr/share/doc/* "$dest"/usr/share/man/* "$dest"/usr/share/info/* \
			"$dest"/usr/share/locale/*
		tar --numeric-owner -C "$dest" -cf "$tar.tmp" .
		mv "$tar.tmp" "$tar"
		# Keep the cache from growing without bound: this name's other lists.
		find "$SKIFF_TEST_CACHE" -maxdepth 1 -name "rootfs-$name-$DEBIAN_SUITE-*.tar" ! -name "$(basename "$tar")" -delete
		rm -rf "$dest" && mkdir -p "$dest"
	else
		log "using cached rootfs $tar"
	fi
	tar --numeric-owner -C "$dest" -xf "$tar"
}

# node_systemd_setup ROOTFS: what every node rootfs needs from systemd's side.
node_systemd_setup() {
	local rootfs=$1 sysd unit
	sysd="$rootfs/etc/systemd/system"
	# Units that make no sense in a container node (consoles, udev, kernel
	# module loading and kernel filesystems that belong to the host, periodic
	# maintenance) or only slow the boot down. Masking beats disabling:
	# nothing can pull them in.
	local masked=(
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
	rm -f "$sysd/multi-user.target.wants/remote-fs.target"
	rm -rf "$sysd/getty.target.wants" "$sysd/timers.target.wants" "$sysd/sysinit.target.wants/systemd-pstore.service"
	ln -sfn /lib/systemd/system/multi-user.target "$sysd/default.target"
	mkdir -p "$sysd/multi-user.target.wants"
	ln -sfn /lib/systemd/system/containerd.service "$sysd/multi-user.target.wants/containerd.service"

	# Empty machine-id: the entrypoint generates one per node container.
	: >"$rootfs/etc/machine-id"
	rm -f "$rootfs/var/lib/dbus/machine-id"
	ln -sfn /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
	# Docker bind-mounts these; don't ship the build host's.
	: >"$rootfs/etc/resolv.conf"
	: >"$rootfs/etc/hostname"

	# kind's node images keep CNI plugins in /opt/cni/bin; Debian's are in
	# /usr/lib/cni.
	mkdir -p "$rootfs/opt/cni"
	ln -sfn /usr/lib/cni "$rootfs/opt/cni/bin"
	mkdir -p "$rootfs/etc/kubernetes/manifests" "$rootfs/etc/cni/net.d" "$rootfs/var/log/journal" \
		"$rootfs/var/lib/kubelet" "$rootfs/kind"
	chmod 755 "$rootfs/kind"
}

# load_rootfs ROOTFS REF CONFIG_JSON: `docker load` ROOTFS as a one-layer
# image tagged REF. CONFIG_JSON is the image config's "config" object
# (Entrypoint, Env, StopSignal, Labels, ...). Removes ROOTFS.
load_rootfs() {
	local rootfs=$1 ref=$2 config=$3 archive layer_sha config_sha created arch
	archive="$(mktemp -d "${TMPDIR:-/var/tmp}/skiff-image.XXXXXX")"
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
  "config": $config,
  "rootfs": {"type": "layers", "diff_ids": ["sha256:$layer_sha"]},
  "history": [{"created": "$created", "created_by": "skiff scripts/lib/debian-rootfs.sh ($ref)"}]
}
EOF
	config_sha="$(sha256sum "$archive/config.json" | cut -d' ' -f1)"
	mv "$archive/config.json" "$archive/$config_sha.json"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]\n' \
		"$config_sha" "$ref" >"$archive/manifest.json"
	tar -C "$archive" -cf - manifest.json "$config_sha.json" layer/layer.tar | docker load >/dev/null
	rm -rf "$archive"
}

# drop_stale_images REPO KEEP...: remove REPO's other tags (best effort:
# images still used by containers stay).
drop_stale_images() {
	local repo=$1
	shift
	local keep=()
	for k in "$@"; do keep+=(-e "$k"); done
	docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo" |
		grep -vxF "${keep[@]}" |
		xargs -r docker image rm >/dev/null 2>&1 || true
}
