#!/usr/bin/env bash
# skiff's test command: builds the offline test images and runs every test.
#
#   scripts/test.sh [CARGO_TEST_ARGS...] [-- TEST_BINARY_ARGS...]
#
# e.g. `scripts/test.sh create_` (filter), `scripts/test.sh --lib`,
#      `scripts/test.sh -- --nocapture`.
#
# Integration tests start real node containers from the image named by
# SKIFF_TEST_IMAGE (and load balancers from SKIFF_TEST_LB_IMAGE). Both are
# built here from Debian packages (scripts/build-test-*-image.sh) because no
# registry can be reached; set either variable beforehand to test with another
# image instead. tests/real_k8s.rs runs real Kubernetes from SKIFF_REAL_IMAGE
# (scripts/build-real-node-image.sh). After the run, any container or network labelled
# io.skiff.cluster that appeared during the run is reported as leaked, removed,
# and fails the run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { echo "test.sh: $*" >&2; }

# When this run has to start dockerd itself (as on CI), it owns the engine,
# and the tests that restart dockerd or delete every cluster may run.
if [[ -z "${SKIFF_TEST_OWNS_DOCKER:-}" ]] && ! docker info >/dev/null 2>&1; then
	export SKIFF_TEST_OWNS_DOCKER=1
fi
scripts/ensure-docker.sh

# tests/ssh_endpoint.rs runs a private sshd on a loopback port. Install it
# without letting the package start a system-wide sshd on port 22.
if [[ ! -x /usr/sbin/sshd && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	log "installing openssh-server (for tests/ssh_endpoint.rs)"
	policy=/usr/sbin/policy-rc.d
	own_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
	fi
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server; } >&2 ||
		log "could not install openssh-server: tests/ssh_endpoint.rs will fail"
	if [[ -n $own_policy ]]; then rm -f "$policy"; fi
fi

if [[ -z "${SKIFF_TEST_IMAGE:-}" ]]; then
	SKIFF_TEST_IMAGE="$(scripts/build-test-node-image.sh | tail -n 1)"
fi
if [[ -z "${SKIFF_TEST_LB_IMAGE:-}" ]]; then
	SKIFF_TEST_LB_IMAGE="$(scripts/build-test-lb-image.sh | tail -n 1)"
fi
export SKIFF_TEST_IMAGE SKIFF_TEST_LB_IMAGE
log "SKIFF_TEST_IMAGE=$SKIFF_TEST_IMAGE"
log "SKIFF_TEST_LB_IMAGE=$SKIFF_TEST_LB_IMAGE"

# Real Kubernetes (tests/real_k8s.rs): built offline from Debian's source
# package, about 20 minutes cold on two cores (the real node image adds about
# 15 more; docs/benchmarks.md), seconds once cached. Set
# SKIFF_SKIP_REAL=1 for a quick local run without it (CI never does).
if [[ "${SKIFF_SKIP_REAL:-}" != 1 && -z "${SKIFF_REAL_IMAGE:-}" ]]; then
	real_out="$(scripts/build-real-node-image.sh)"
	SKIFF_REAL_IMAGE="$(tail -n 1 <<<"$real_out")"
	SKIFF_TEST_POD_IMAGE="$(sed -n 's/^pod-image=//p' <<<"$real_out")"
	SKIFF_TEST_KUBECTL="$(scripts/build-kubernetes.sh | tail -n 1)/kubectl"
	export SKIFF_REAL_IMAGE SKIFF_TEST_POD_IMAGE SKIFF_TEST_KUBECTL
	log "SKIFF_REAL_IMAGE=$SKIFF_REAL_IMAGE"
fi

# Split our arguments: before `--` for cargo, after it for the test binaries.
cargo_args=()
harness_args=()
while [[ $# -gt 0 ]]; do
	if [[ "$1" == "--" ]]; then
		shift
		harness_args=("$@")
		break
	fi
	cargo_args+=("$1")
	shift
done

# Only resources created during this run count as leaks: a developer may have
# real skiff clusters running on the same engine.
skiff_resources() {
	docker ps -aq --no-trunc --filter label=io.skiff.cluster | sed 's/^/container /'
	docker network ls -q --no-trunc --filter label=io.skiff.cluster | sed 's/^/network /'
}
before="$(skiff_resources | sort)"

status=0
# --no-fail-fast: one failing test binary must not hide the others' results.
cargo test --no-fail-fast --all-targets "${cargo_args[@]}" -- --test-threads=4 "${harness_args[@]}" || status=$?

leaked="$(comm -13 <(echo "$before") <(skiff_resources | sort) | grep -v '^$' || true)"
if [[ -n "$leaked" ]]; then
	log "ERROR: the tests left skiff resources behind (label io.skiff.cluster); removing them:"
	# Containers first: a network in use cannot be removed.
	while read -r kind id; do
		[[ "$kind" == container ]] || continue
		docker ps -a --filter "id=$id" \
			--format '  container {{.Names}} (cluster {{.Label "io.skiff.cluster"}}, {{.Status}})' >&2
		docker rm -f -v "$id" >/dev/null 2>&1 || true
	done <<<"$leaked"
	while read -r kind id; do
		[[ "$kind" == network ]] || continue
		docker network ls --filter "id=$id" \
			--format '  network {{.Name}} (cluster {{.Label "io.skiff.cluster"}})' >&2
		docker network rm "$id" >/dev/null 2>&1 || true
	done <<<"$leaked"
	[[ $status -ne 0 ]] || status=1
fi

exit "$status"
