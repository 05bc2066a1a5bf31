#!/usr/bin/env bash
# Make sure a usable Docker engine (and debootstrap, which the offline test
# images are built with) is present on this machine.
#
# CI machines start fresh: neither docker.io nor debootstrap is installed and
# no dockerd runs. This script installs what is missing from Debian's archive
# (the only package source reachable here), starts dockerd in the background
# and waits until `docker info` answers. It is idempotent and silent when
# everything is already in place; progress goes to stderr.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }

# Root on CI and dev machines; fall back to sudo elsewhere.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	SUDO=(sudo)
fi

DOCKERD_LOG=/var/log/skiff-dockerd.log

missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
	# docker.io brings containerd, runc and tini (docker-init) along.
	missing+=(docker.io)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	# A fresh machine has no package lists, so update once before installing.
	log "apt-get update"
	"${SUDO[@]}" apt-get update -qq >&2
	log "installing ${missing[*]}"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if docker info >/dev/null 2>&1; then
	exit 0
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
	# CI sandboxes have no init system to start the service: run dockerd
	# directly, in its own session so it outlives this script.
	log "starting dockerd (log: $DOCKERD_LOG)"
	"${SUDO[@]}" bash -c "nohup setsid dockerd >>'$DOCKERD_LOG' 2>&1 </dev/null &"
fi

for _ in $(seq 1 120); do
	if docker info >/dev/null 2>&1; then
		exit 0
	fi
	sleep 0.5
done

log "docker did not become ready within 60s; last dockerd log lines:"
tail -n 30 "$DOCKERD_LOG" >&2 2>/dev/null || true
exit 1
