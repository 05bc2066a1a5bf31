#!/usr/bin/env bash
# Build the REAL-Kubernetes node image the end-to-end tests run, entirely
# offline, and print its reference as the last line on stdout.
#
#   scripts/build-real-node-image.sh
#
# Nothing here can be pulled or downloaded from a Kubernetes release, so:
#   1. scripts/build-kubernetes.sh builds Kubernetes v1.20.2 from Debian's
#      source package (cached);
#   2. the control-plane images are made from those binaries and from Debian
#      packages, named exactly as `kubeadm config images list` prints them:
#      kube-apiserver, kube-controller-manager, kube-scheduler (the static
#      binary alone), kube-proxy (with iptables and conntrack), etcd (Debian's
#      etcd-server) and pause (compiled from the same source tree);
#      busybox (Debian's busybox-static) stands in for the busybox skiff's
#      fallback pod network pins by a digest no offline build can reproduce;
#   3. a base image like kindest/base (systemd, containerd, runc) is
#      debootstrapped from images/base/packages.txt;
#   4. `skiff build node-image` itself builds the node image on that base: it
#      downloads kubeadm, kubelet, kubectl and the CNI plugins through its
#      download module from a loopback mirror in the official release layout
#      (with .sha256 files), and preloads the images of step 2 from the engine.
# crictl cannot be had offline: the image is built --without-crictl.
#
# Also built, for the tests to `skiff load`: skiff-test-pod (busybox again,
# under its own name, never preloaded). Its reference is printed on the line
# before the node image's, as `pod-image=REF`.
#
# Every result is tagged by a hash of its inputs, so a second run only checks
# that the tags exist.
set -euo pipefail

log() { echo "build-real-node-image: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/debian-rootfs.sh
source "$repo_root/scripts/lib/debian-rootfs.sh"
cd "$repo_root"

"$repo_root/scripts/ensure-docker.sh"
k8s="$("$repo_root/scripts/build-kubernetes.sh" | tail -n 1)"
version="$(cat "$k8s/VERSION")"
images="$("$k8s/kubeadm" config images list --kubernetes-version "$version" 2>/dev/null)"
image_named() { grep "/$1:" <<<"$images"; }

# What kubeadm v1.20.2 names (k8s.gcr.io/...); CoreDNS is not in Debian and
# is not built: its pods stay pending, and nothing may claim DNS works.
pause_image="$(image_named pause)"
etcd_image="$(image_named etcd)"
# The image skiff's fallback CNI manifest pins (templates/cni).
pinned_busybox="$(sed -n 's/^ *image: \(docker.io\/library\/busybox:[^ ]*\)$/\1/p' templates/cni/default-cni.yaml.tera | head -n 1)"
[[ -n "$pinned_busybox" ]] || {
	log "ERROR: no busybox image found in templates/cni/default-cni.yaml.tera"
	exit 1
}

inputs="$(
	{
		echo "$k8s"
		git ls-files scripts/build-real-node-image.sh scripts/lib images/base images/kubernetes \
			images/node templates/cni templates/storage src/build src/download
	} | while IFS= read -r f; do
		if [[ -f "$f" ]]; then printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"; else echo "$f"; fi
	done | sha256sum | cut -c1-12
)"
node_ref="skiff-real-node:$version-$inputs"
pod_ref="skiff-test-pod:$inputs"
if docker image inspect "$node_ref" "$pod_ref" >/dev/null 2>&1; then
	log "$node_ref is up to date"
	echo "pod-image=$pod_ref"
	echo "$node_ref"
	exit 0
fi

work="$(mktemp -d /var/tmp/skiff-real-node.XXXXXX)"
mirror_pid=
cleanup() {
	[[ -z "$mirror_pid" ]] || kill "$mirror_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# Debian packages needed as files (not installed on this machine).
fetch_deb() {
	local pkg=$1 dest=$2
	mkdir -p "$dest"
	if ! (cd "$work" && apt-get download -qq "$pkg" >&2 2>/dev/null); then
		apt-get update -qq >&2
		(cd "$work" && apt-get download -qq "$pkg" >&2)
	fi
	dpkg-deb -x "$work/${pkg}_"*.deb "$dest"
}

build_image() { # build_image REF CONTEXT_DIR
	log "building $1"
	# Quiet unless it fails: the classic builder's deprecation notice is noise.
	docker build -q -t "$1" "$2" >"$work/build.log" 2>&1 || {
		cat "$work/build.log" >&2
		return 1
	}
}

# --- 2. component images ------------------------------------------------------
start=$SECONDS
for component in kube-apiserver kube-controller-manager kube-scheduler; do
	ctx="$work/ctx-$component"
	mkdir -p "$ctx"
	cp "$k8s/$component" "$ctx/"
	# The static binary alone; kubeadm's static pods call it by name.
	cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY $component /usr/local/bin/$component
ENV PATH=/usr/local/bin
LABEL io.skiff.test-image=kubernetes io.skiff.test-image.inputs=$inputs
EOF
	build_image "$(image_named "$component")" "$ctx"
done

ctx="$work/ctx-pause"
mkdir -p "$ctx"
cp "$k8s/pause" "$ctx/"
printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
build_image "$pause_image" "$ctx"

# kube-proxy and etcd share one Debian rootfs (one layer in every node).
runtime_ref="skiff-k8s-runtime:$inputs"
if ! docker image inspect "$runtime_ref" >/dev/null 2>&1; then
	debian_rootfs "$(package_list images/kubernetes/packages.txt)" "$work/runtime" k8s-runtime
	load_rootfs "$work/runtime" "$runtime_ref" \
		'{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
fi
ctx="$work/ctx-kube-proxy"
mkdir -p "$ctx"
cp "$k8s/kube-proxy" "$ctx/kube-proxy.bin"
cp images/kubernetes/iptables-wrapper "$ctx/"
cat >"$ctx/Dockerfile" <<EOF
FROM $runtime_ref
COPY kube-proxy.bin /usr/local/bin/kube-proxy.bin
COPY iptables-wrapper /usr/local/bin/kube-proxy
EOF
build_image "$(image_named kube-proxy)" "$ctx"
# Debian's etcd is 3.4.23 where kubeadm names 3.4.13: same minor, same flags.
printf 'FROM %s\n' "$runtime_ref" >"$work/Dockerfile.etcd"
mkdir -p "$work/ctx-etcd" && mv "$work/Dockerfile.etcd" "$work/ctx-etcd/Dockerfile"
build_image "$etcd_image" "$work/ctx-etcd"

# busybox: every applet as a link, so `nsenter`, `sh`, `httpd`… resolve.
fetch_deb busybox-static "$work/busybox-deb"
busybox_version="$(dpkg-deb -f "$work"/busybox-static_*.deb Version | sed 's/^[0-9]*://; s/[^A-Za-z0-9._-]/_/g')"
busybox_ref="skiff.local/busybox:$busybox_version"
ctx="$work/ctx-busybox"
mkdir -p "$ctx/bin"
cp "$work/busybox-deb/bin/busybox" "$ctx/bin/"
for applet in $("$ctx/bin/busybox" --list); do
	[[ "$applet" == busybox ]] || ln -sf busybox "$ctx/bin/$applet"
done
printf 'FROM scratch\nCOPY bin /bin\nENV PATH=/bin\nCMD ["sh"]\n' >"$ctx/Dockerfile"
build_image "$busybox_ref" "$ctx"
docker tag "$busybox_ref" "$pod_ref"
log "component images: $((SECONDS - start)) s"

# --- 3. the base image --------------------------------------------------------
base_ref="skiff-real-base:$inputs"
if ! docker image inspect "$base_ref" >/dev/null 2>&1; then
	debian_rootfs "$(package_list images/base/packages.txt)" "$work/base" real-base
	node_systemd_setup "$work/base"
	# kindest/base does not ship CNI plugins; the build adds them.
	rm -f "$work/base/opt/cni/bin"
	# skiff's containerd configuration, with the sandbox image kubeadm names.
	mkdir -p "$work/base/etc/containerd"
	sed "s|^\( *sandbox_image = \).*|\1\"$pause_image\"|" \
		images/node/containerd/etc/containerd/config.toml >"$work/base/etc/containerd/config.toml"
	load_rootfs "$work/base" "$base_ref" \
		'{"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "StopSignal": "SIGRTMIN+3",
		  "Labels": {"io.skiff.test-image": "real-base", "io.skiff.test-image.inputs": "'"$inputs"'"}}'
fi

# --- 4. the mirror and skiff's own build ---------------------------------------
mirror="$work/mirror"
release="$mirror/dl.k8s.io/release/$version/bin/linux/amd64"
mkdir -p "$release"
for bin in kubeadm kubelet kubectl; do
	cp "$k8s/$bin" "$release/"
	# dl.k8s.io publishes the bare hex digest.
	sha256sum "$release/$bin" | cut -d' ' -f1 >"$release/$bin.sha256"
done
fetch_deb containernetworking-plugins "$work/cni-deb"
cni_version="v$(dpkg-deb -f "$work"/containernetworking-plugins_*.deb Version | sed 's/[-+~].*//')"
cni_dir="$mirror/github.com/containernetworking/plugins/releases/download/$cni_version"
cni_tgz="cni-plugins-linux-amd64-$cni_version.tgz"
mkdir -p "$cni_dir"
tar -C "$work/cni-deb/usr/lib/cni" -czf "$cni_dir/$cni_tgz" .
(cd "$cni_dir" && sha256sum "$cni_tgz" >"$cni_tgz.sha256")

python3 - "$mirror" "$work/mirror.port" <<'EOF' &
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
handler = functools.partial(Quiet, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
open(sys.argv[2], "w").write(str(server.server_address[1]))
server.serve_forever()
EOF
mirror_pid=$!
for _ in $(seq 1 50); do [[ -s "$work/mirror.port" ]] && break; sleep 0.1; done
port="$(cat "$work/mirror.port")"

log "building skiff"
cargo build --quiet --bin skiff
# A private download cache: the mirror's files must not shadow real ones.
SKIFF_CACHE_DIR="$work/cache" "$repo_root/target/debug/skiff" build node-image \
	--kubernetes-version "$version" --base-image "$base_ref" --tag "$node_ref" \
	--mirror "http://127.0.0.1:$port" --without-crictl \
	--substitute-image "$pinned_busybox=$busybox_ref" >&2

drop_stale_images skiff-real-node "$node_ref"
drop_stale_images skiff-test-pod "$pod_ref"
drop_stale_images skiff-real-base "$base_ref"
drop_stale_images skiff-k8s-runtime "$runtime_ref"
log "built $node_ref"
echo "pod-image=$pod_ref"
echo "$node_ref"
