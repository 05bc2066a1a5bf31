#!/usr/bin/env bash
# Build real Kubernetes binaries offline, from Debian's `kubernetes` source
# package, for the real-Kubernetes test image.
#
#   scripts/build-kubernetes.sh        # prints the output directory last
#
# No Kubernetes release can be downloaded on the machines this project runs
# on, but Debian's archive can be reached, and bookworm's source package
# `kubernetes` (1.20.5+really1.20.2) is the whole v1.20.2 tree with vendor/.
# Debian's golang-1.19-go builds it in GOPATH mode (module mode trips over the
# vendored go.mod). The result is cached under the test cache, keyed by every
# input, so a second run only checks the cache.
#
# What goes into the output directory (all static, stripped, linux/amd64):
#   kubeadm kubelet kubectl kube-apiserver kube-controller-manager
#   kube-scheduler kube-proxy   (from cmd/ in the source tree)
#   pause                       (build/pause/linux/pause.c, gcc -static)
#   VERSION                     (v1.20.2)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "build-kubernetes: $*" >&2; }

# The source package, pinned: apt checks the .dsc's checksums, and the orig
# tarball is checked against this digest once more before anything is built.
SRC_PKG=kubernetes
SRC_VERSION=1.20.5+really1.20.2-1.1+deb12u1
ORIG_SHA256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
K8S_VERSION=v1.20.2
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
# The vendored modern-go/reflect2 v1.0.1 crashes under Go 1.18+ (nil pointer
# in reflect2.(*frozenConfig).Type2, first hit by `kubeadm init`). Debian's
# packaged 1.0.2 sources replace it through `go build -overlay`, so the tree
# itself is never edited.
GO_PKG=golang-1.19-go
REFLECT2_PKG=golang-github-modern-go-reflect2-dev
BINARIES=(kubeadm kubectl kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver)

cache_root="${SKIFF_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff-test}"

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)

need_pkgs=()
for pkg in "$GO_PKG" "$REFLECT2_PKG" rsync gcc dpkg-dev libc6-dev; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$pkg")
done
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
	log "installing ${need_pkgs[*]}"
	"${SUDO[@]}" apt-get update -qq >&2
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi
GO=/usr/lib/go-1.19/bin/go
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

# The cache key covers this script, the source version, the toolchain and the
# replacement reflect2 sources.
key="$(
	{
		cat "${BASH_SOURCE[0]}"
		echo "$SRC_VERSION $ORIG_SHA256"
		"$GO" version
		dpkg-query -W -f='${Version}\n' "$REFLECT2_PKG"
		gcc --version | head -n 1
	} | sha256sum | cut -c1-16
)"
out="$cache_root/kubernetes/$K8S_VERSION-$key"
if [[ -f "$out/.complete" ]]; then
	log "cached: $out"
	echo "$out"
	exit 0
fi

work="$cache_root/kubernetes/work"
mkdir -p "$work"

# 1. The source package, through a private apt configuration: the machine's
#    own apt setup is read (for its mirror) but never changed.
if ! ls "$work"/${SRC_PKG}_*.orig.tar.* >/dev/null 2>&1; then
	apt_dir="$work/apt"
	mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial"
	# Turn every Debian binary source the machine uses into a source-package
	# one (both the deb822 and the one-line formats).
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$f" ]] || continue
		sed -e 's/^Types:.*/Types: deb-src/' "$f" >"$apt_dir/sources.list.d/$(basename "$f")"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$f" ]] || continue
		sed -n -e 's/^deb \(.*\)/deb-src \1/p' "$f" >"$apt_dir/sources.list.d/$(basename "$f")"
	done
	apt_opts=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
		-o "Dir::State::Lists=$apt_dir/lists")
	log "fetching source package $SRC_PKG=$SRC_VERSION"
	apt-get "${apt_opts[@]}" update -qq >&2
	(cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq "$SRC_PKG=$SRC_VERSION" >&2)
fi
orig="$(ls "$work"/${SRC_PKG}_*.orig.tar.* | head -n 1)"
echo "$ORIG_SHA256  $orig" | sha256sum -c --quiet - >&2 || {
	log "ERROR: $orig does not have the pinned sha256 $ORIG_SHA256"
	exit 1
}

# 2. A GOPATH with the tree at k8s.io/kubernetes (a real directory, not a
#    link, so the overlay's paths are the paths the compiler sees).
gopath="$work/gopath"
tree="$gopath/src/k8s.io/kubernetes"
if [[ ! -f "$tree/.unpacked" ]]; then
	log "unpacking $(basename "$orig")"
	rm -rf "$tree"
	mkdir -p "$tree"
	tar -xf "$orig" -C "$tree" --strip-components=1
	touch "$tree/.unpacked"
fi

export GOPATH="$gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOCACHE="$work/gocache"
export PATH="/usr/lib/go-1.19/bin:$PATH"

# 3. kube-apiserver needs the generated OpenAPI definitions.
if [[ ! -f "$tree/pkg/generated/openapi/zz_generated.openapi.go" ]]; then
	log "make generated_files (about two minutes)"
	start=$SECONDS
	(cd "$tree" && nice -n 10 make generated_files KUBE_VERBOSE=0 >"$work/generated_files.log" 2>&1) || {
		tail -n 40 "$work/generated_files.log" >&2
		exit 1
	}
	log "generated_files: $((SECONDS - start)) s"
fi

# 4. The reflect2 overlay: every file of the vendored copy is dropped, every
#    file of Debian's 1.0.2 takes its place.
overlay="$work/reflect2-overlay.json"
vendored="$tree/vendor/github.com/modern-go/reflect2"
{
	printf '{"Replace":{'
	sep=
	for f in "$vendored"/*; do
		[[ -f "$f" ]] || continue
		printf '%s"%s":""' "$sep" "$f"
		sep=,
	done
	for f in "$REFLECT2_SRC"/*.go "$REFLECT2_SRC"/*.s; do
		[[ -f "$f" ]] || continue
		printf '%s"%s":"%s"' "$sep" "$vendored/$(basename "$f")" "$f"
		sep=,
	done
	printf '}}\n'
} >"$overlay"

# 5. The binaries, with the version stamped where `kubeadm version` and the
#    API server read it.
build_date="$(date -u -d @"$(stat -c %Y "$orig")" +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
	ldflags+=" -X $pkg.gitCommit=$K8S_COMMIT -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

staging="$work/bin"
mkdir -p "$staging"
total=$SECONDS
for bin in "${BINARIES[@]}"; do
	if [[ -x "$staging/$bin" ]]; then
		log "$bin: already built"
		continue
	fi
	log "building $bin"
	start=$SECONDS
	(cd "$tree" && nice -n 10 "$GO" build -overlay "$overlay" -trimpath -ldflags "$ldflags" \
		-o "$staging/$bin.tmp" "./cmd/$bin")
	mv "$staging/$bin.tmp" "$staging/$bin"
	log "$bin: $((SECONDS - start)) s, $(du -m "$staging/$bin" | cut -f1) MB"
done

log "building pause"
gcc -Os -static -DVERSION=v3.2-skiff -o "$staging/pause" "$tree/build/pause/linux/pause.c"
strip "$staging/pause"
echo "$K8S_VERSION" >"$staging/VERSION"
log "all binaries: $((SECONDS - total)) s"

# 6. Publish atomically into the keyed directory; keep the source (34 MB) and
#    the Go build cache for a rebuild with another key, drop the rest.
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp -a "$staging"/. "$out.tmp"/
touch "$out.tmp/.complete"
rm -rf "$out"
mv "$out.tmp" "$out"
rm -rf "$staging"
"$out/kubeadm" version -o short >&2
echo "$out"
