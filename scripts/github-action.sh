#!/usr/bin/env bash
# The shell part of the skiff GitHub Action (action.yml at the repository
# root). `main` installs skiff, creates the cluster and exports the
# kubeconfig; `post` deletes the cluster (the action runs it as a post
# step, also when the job failed).
#
# Inputs come as INPUT_* variables (see action.yml and docs/github-action.md);
# results go where a runner expects them: GITHUB_OUTPUT, GITHUB_ENV,
# GITHUB_PATH; scratch files under RUNNER_TEMP. tests/action.rs runs this
# script against the local engine with exactly that environment.
#
# SKIFF_ACTION_PREBUILT=/path/to/skiff skips the install (tests, runners
# with skiff preinstalled).
set -euo pipefail

: "${RUNNER_TEMP:?RUNNER_TEMP must be set (the runner sets it)}"

# The action's own checkout: this script's parent directory (the post step
# runs inside a helper action, whose GITHUB_ACTION_PATH is not ours).
action_dir="$(cd "$(dirname "$0")/.." && pwd)"
# The ref the workflow asked for (`uses: skiff-dev/skiff@v0.2.0`), passed on
# by action.yml.
action_ref="${SKIFF_ACTION_REF:-}"
state_file="$RUNNER_TEMP/skiff-action.state"
bin_dir="$RUNNER_TEMP/skiff-action/bin"
image_cache="${SKIFF_ACTION_IMAGE_CACHE:-$HOME/.cache/skiff-action/images}"
repository="${SKIFF_ACTION_REPOSITORY:-skiff-dev/skiff}"

cluster="${INPUT_CLUSTER_NAME:-skiff}"
version="${INPUT_VERSION:-auto}"
wait_for="${INPUT_WAIT:-5m}"
verbosity="${INPUT_VERBOSITY:-0}"

log() { echo "skiff-action: $*" >&2; }
output() { echo "$1=$2" >>"$GITHUB_OUTPUT"; }
truthy() { case "${1,,}" in true | yes | 1) return 0 ;; *) return 1 ;; esac; }

# -v per verbosity level, as kind-action's `verbosity`.
verbose_flags() {
  local i flags=()
  for ((i = 0; i < verbosity; i++)); do flags+=(-v); done
  echo "${flags[@]:-}"
}

# Installs skiff into $bin_dir: the prebuilt binary when given; the release
# of the action's tag when one exists (version `auto` on a v* ref, or an
# explicit version); else built from the checked-out source.
install_skiff() {
  mkdir -p "$bin_dir"
  if [[ -n "${SKIFF_ACTION_PREBUILT:-}" ]]; then
    install -m 0755 "$SKIFF_ACTION_PREBUILT" "$bin_dir/skiff"
  else
    local tag=""
    if [[ "$version" == auto && "$action_ref" == v* ]]; then
      tag="$action_ref"
    elif [[ "$version" != auto && "$version" != source ]]; then
      tag="$version"
    fi
    local arch
    arch="$(uname -m)"
    local url="https://github.com/$repository/releases/download/$tag/skiff-$arch-unknown-linux-gnu.tar.gz"
    if [[ -n "$tag" ]] && curl -fsSL --retry 3 "$url" | tar -xz -C "$bin_dir" skiff 2>/dev/null; then
      log "installed skiff $tag from its release"
    else
      [[ -n "$tag" ]] && log "no release asset for $tag; building from source"
      cargo install --locked --quiet --path "$action_dir" --root "$RUNNER_TEMP/skiff-action"
    fi
  fi
  echo "$bin_dir" >>"$GITHUB_PATH"
  export PATH="$bin_dir:$PATH"
  output skiff "$bin_dir/skiff"
  log "$("$bin_dir/skiff" version | head -n 1)"
}

# Loads node images cached by an earlier run (actions/cache restores the
# directory) so no registry is needed for them.
load_cached_images() {
  [[ -d "$image_cache" ]] || return 0
  local tar
  for tar in "$image_cache"/*.tar; do
    [[ -e "$tar" ]] || continue
    log "loading cached image $(basename "$tar")"
    docker load -q -i "$tar" >&2 || log "could not load $tar; skiff will pull instead"
  done
}

# Saves the cluster's node image for the next run, once.
save_image() {
  local image file
  image="$(docker inspect -f '{{.Config.Image}}' "$cluster-control-plane" 2>/dev/null)" || return 0
  file="$image_cache/$(echo "$image" | tr '/:@' '___').tar"
  [[ -e "$file" ]] && return 0
  mkdir -p "$image_cache"
  docker save -o "$file.tmp" "$image" && mv "$file.tmp" "$file" && log "cached $image"
}

main() {
  : "${GITHUB_OUTPUT:?GITHUB_OUTPUT must be set}"
  : "${GITHUB_ENV:?GITHUB_ENV must be set}"
  : "${GITHUB_PATH:?GITHUB_PATH must be set}"
  install_skiff
  if truthy "${INPUT_INSTALL_ONLY:-false}"; then
    return 0
  fi
  local args=(create "$cluster" --wait "$wait_for" --retain)
  [[ -n "${INPUT_CONFIG:-}" ]] && args+=(--config "$INPUT_CONFIG")
  [[ -n "${INPUT_NODE_IMAGE:-}" ]] && args+=(--image "$INPUT_NODE_IMAGE")
  local kubeconfig="${INPUT_KUBECONFIG:-$HOME/.kube/config}"
  args+=(--kubeconfig "$kubeconfig")
  local addons="${INPUT_ADDONS:-}"
  if truthy "${INPUT_REGISTRY:-false}"; then
    addons="${addons:+$addons,}registry"
  fi
  [[ -n "$addons" ]] && args+=(--addons "$addons")

  # The post step deletes whatever exists of this cluster from here on.
  printf 'cluster=%s\nkubeconfig=%s\n' "$cluster" "$kubeconfig" >"$state_file"
  load_cached_images
  # shellcheck disable=SC2046 # verbose_flags is a list of words
  if ! skiff $(verbose_flags) "${args[@]}"; then
    local archive="$RUNNER_TEMP/skiff-logs-$cluster.tar.gz"
    log "create failed; collecting the logs into $archive"
    skiff export logs --cluster "$cluster" --archive "$archive" || true
    output logs-archive "$archive"
    return 1
  fi
  save_image || log "could not cache the node image"
  echo "KUBECONFIG=$kubeconfig" >>"$GITHUB_ENV"
  output cluster-name "$cluster"
  output kubeconfig "$kubeconfig"
  output context "skiff-$cluster"
}

post() {
  [[ -f "$state_file" ]] || {
    log "no cluster to delete"
    return 0
  }
  local name kubeconfig
  name="$(sed -n 's/^cluster=//p' "$state_file")"
  kubeconfig="$(sed -n 's/^kubeconfig=//p' "$state_file")"
  local skiff="$bin_dir/skiff"
  [[ -x "$skiff" ]] || skiff="skiff"
  "$skiff" delete "$name" --kubeconfig "$kubeconfig"
  rm -f "$state_file"
}

case "${1:-}" in
  main) main ;;
  post) post ;;
  *)
    echo "usage: $0 main|post" >&2
    exit 2
    ;;
esac
