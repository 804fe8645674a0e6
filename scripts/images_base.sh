#!/usr/bin/env bash
# The base images every service image builds from, made with debootstrap rather than
# pulled from a registry (Debian's mirror is reachable where Docker Hub is not):
#   likeness-base-build:<key>    Debian bookworm minbase, python3 3.11, venv and pip: the
#                                build stages install wheels with it
#   likeness-base-runtime:<key>  python3, CA certificates, tzdata and the user likeness
#                                (10001): no pip, setuptools or apt, so the final stage
#                                of a service image only copies
#   likeness-base-runtime-gl:<key>  the same with the loaders MediaPipe's libmediapipe.so
#                                links (libEGL.so.1, libGLESv2.so.2) and OpenCV's libGL and
#                                GLib: for faces and render
# <key> is a hash of the recipe (the lines between the recipe markers below): an edited
# recipe makes new bases, an unchanged one is built once per machine. Prints BUILD_BASE=, RUNTIME_BASE= and RUNTIME_GL_BASE=<image id>,
# which scripts/images.sh hands to the Dockerfiles (bases pinned by their digest).
# `--docker` also copies them into Docker's image store (for Tilt) and prints their tags.
# Needs root, debootstrap and buildah.
set -euo pipefail
cd "$(dirname "$0")/.."

# recipe:begin
SUITE=bookworm
MIRROR=${LIKENESS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
RUNTIME_PACKAGES=python3,ca-certificates,tzdata
BUILD_PACKAGES=python3-venv,python3-pip
BUILD_ONLY_PACKAGES="python3-pip python3-venv python3.11-venv python3-setuptools python3-wheel python3-pip-whl python3-setuptools-whl"
GL_PACKAGES="libegl1 libgles2 libgl1 libglib2.0-0"
GL_DRIVER_PACKAGES="libgl1-mesa-dri libllvm15 libz3-4"
KEY=$(sed -n '/^# recipe:begin/,/^# recipe:end/p' "$0" | sha256sum | cut -c1-12)
BUILD_TAG=localhost/likeness-base-build:$KEY
RUNTIME_TAG=localhost/likeness-base-runtime:$KEY
RUNTIME_GL_TAG=localhost/likeness-base-runtime-gl:$KEY

image_id() { buildah images --noheading --no-trunc --format '{{.ID}}' "$1" 2>/dev/null | head -n1; }

commit_rootfs() { # rootfs-dir tag
    local ctr
    ctr=$(buildah from scratch)
    tar -C "$1" -cf "$1.tar" .
    buildah add --quiet "$ctr" "$1.tar" / >/dev/null
    rm -f "$1.tar"
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd '["python3"]' \
        --label org.opencontainers.image.base.name="debian:$SUITE (debootstrap minbase)" \
        --label likeness.base.recipe="$KEY" "$ctr"
    buildah commit --quiet --rm "$ctr" "$2" >/dev/null
}

tidy() { # rootfs-dir: what no container needs
    rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/tmp/* \
        "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/*
    find "$1"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} +
}

if [[ -z $(image_id "$BUILD_TAG") || -z $(image_id "$RUNTIME_TAG") || -z $(image_id "$RUNTIME_GL_TAG") ]]; then
    for tool in debootstrap buildah; do
        command -v "$tool" >/dev/null || { echo "images_base: $tool is not installed (apt-get install -y debootstrap buildah)" >&2; exit 1; }
    done
    work=$(mktemp -d /var/tmp/likeness-base.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    echo "images_base: debootstrap $SUITE into $work (recipe $KEY)" >&2
    debootstrap --variant=minbase --include="$RUNTIME_PACKAGES,$BUILD_PACKAGES" "$SUITE" "$work/build" "$MIRROR" >&2
    # pip installs into virtual environments only; the marker would refuse that too.
    rm -f "$work"/build/usr/lib/python3*/EXTERNALLY-MANAGED
    chroot "$work/build" groupadd --system --gid 10001 likeness
    chroot "$work/build" useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin likeness 2>/dev/null
    cp -a "$work/build" "$work/runtime"
    chroot "$work/runtime" dpkg --purge $BUILD_ONLY_PACKAGES >&2
    cp -a "$work/runtime" "$work/runtime-gl"
    cp /etc/resolv.conf "$work/runtime-gl/etc/resolv.conf"
    chroot "$work/runtime-gl" apt-get update -qq >&2
    chroot "$work/runtime-gl" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $GL_PACKAGES >&2
    # Mesa's drivers (and the LLVM they carry, ~160 MB) are loaded only for a GL context,
    # which no service creates: MediaPipe runs on the CPU and only needs the loaders.
    chroot "$work/runtime-gl" dpkg --purge --force-depends $GL_DRIVER_PACKAGES >&2
    : > "$work/runtime-gl/etc/resolv.conf"
    # No package manager at run time: apt goes with its keys and sources; dpkg's status
    # file stays so that scanners still see which Debian packages are there.
    for root in "$work/runtime" "$work/runtime-gl"; do
        chroot "$root" dpkg --purge --force-remove-essential apt >&2
        rm -rf "$root"/etc/apt "$root"/usr/share/keyrings "$root"/usr/lib/python3*/ensurepip
        tidy "$root"
    done
    tidy "$work/build"
    commit_rootfs "$work/build" "$BUILD_TAG"
    commit_rootfs "$work/runtime" "$RUNTIME_TAG"
    commit_rootfs "$work/runtime-gl" "$RUNTIME_GL_TAG"
fi
# recipe:end
if [[ ${1:-} == --docker ]]; then
    # For Tilt, which builds with Docker: the same bases, copied into Docker's image store
    # once, referenced by their recipe tag (the key pins them).
    for tag in "$BUILD_TAG" "$RUNTIME_TAG" "$RUNTIME_GL_TAG"; do
        docker image inspect "$tag" >/dev/null 2>&1 || buildah push --quiet "$tag" "docker-daemon:$tag" >&2
    done
    echo "BUILD_BASE=$BUILD_TAG"
    echo "RUNTIME_BASE=$RUNTIME_TAG"
    echo "RUNTIME_GL_BASE=$RUNTIME_GL_TAG"
    exit 0
fi
echo "BUILD_BASE=$(image_id "$BUILD_TAG")"
echo "RUNTIME_BASE=$(image_id "$RUNTIME_TAG")"
echo "RUNTIME_GL_BASE=$(image_id "$RUNTIME_GL_TAG")"
