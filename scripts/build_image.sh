#!/usr/bin/env bash
# `make image`: build the container image from the Dockerfile with podman (or buildah, or docker).
#
#   IMAGE=campaign-manager:dev            the tag to build
#   BASE_IMAGE=python:3.11.14-slim-bookworm   the base (any Debian bookworm image with CPython 3.11 and venv)
#   CM_IMAGE_LOCAL_BASE=1                 build the base here from Debian's packages (debootstrap, as root) instead
#                                         of pulling it: for machines that reach Debian's mirrors but no registry;
#                                         it trusts the host's /usr/local/share/ca-certificates too
#   CM_IMAGE_GLOBAL_FLAGS="..."           flags before the builder's verb, and CM_IMAGE_BUILD_FLAGS="..." after it;
#                                         on a host without a usable cgroup v2 or overlay filesystem, podman needs
#                                         GLOBAL "--storage-driver vfs --cgroup-manager cgroupfs", BUILD "--isolation chroot"
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-campaign-manager:dev}"
BASE_IMAGE="${BASE_IMAGE:-python:3.11.14-slim-bookworm}"
read -r -a GLOBAL <<< "${CM_IMAGE_GLOBAL_FLAGS:-}"
read -r -a FLAGS <<< "${CM_IMAGE_BUILD_FLAGS:-}"

if command -v podman >/dev/null; then TOOL=podman; VERB=build
elif command -v buildah >/dev/null; then TOOL=buildah; VERB=bud
elif command -v docker >/dev/null; then TOOL=docker; VERB=build
else echo "make image needs podman, buildah or docker" >&2; exit 1; fi
BUILD=("$TOOL" "${GLOBAL[@]}" "$VERB" "${FLAGS[@]}")
IMPORT=("$TOOL" "${GLOBAL[@]}" import)

if [ "${CM_IMAGE_LOCAL_BASE:-0}" = 1 ]; then
  BASE_IMAGE=localhost/cm-python:3.11-bookworm
  root=$(mktemp -d)
  chmod 755 "$root"  # it becomes the image's /: mktemp's 0700 would lock every user but root out of it
  trap 'rm -rf "$root"' EXIT
  echo "Building the base image $BASE_IMAGE from Debian bookworm's packages (python3 3.11, python3-venv)..."
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" http://deb.debian.org/debian >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  # The host's own CA certificates (e.g. of a proxy that inspects TLS) are trusted inside too, so pip can reach PyPI.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
  fi
  tar -C "$root" -c . | "${IMPORT[@]}" - "$BASE_IMAGE" >/dev/null
  BUILD+=(--pull=never)
fi

"${BUILD[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" -f Dockerfile .
echo "Built $IMAGE (base $BASE_IMAGE)."
