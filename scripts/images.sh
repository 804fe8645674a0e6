#!/usr/bin/env bash
# `make images`: build every service image with buildah (no Docker daemon), from the bases
# scripts/images_base.sh makes once per recipe, with each service's arguments from
# docker-bake.json. Images are tagged localhost/likeness-<service>:$LIKENESS_IMAGE_TAG
# (default dev). `scripts/images.sh render faces` builds only those.
#
# RUN steps that install wheels reach the same package indexes as this machine's pip: its
# CA bundle, pip config (index, extra indexes, find-links) and local index folders are
# mounted read-only into the build, never copied into a layer. Layers are cached
# (--layers): an unchanged lock reuses the layer of third-party packages.
# Environment: LIKENESS_IMAGE_TAG (dev), LIKENESS_FACES_LOCK (faces: the lock of PyPI's
# torch, CUDA-enabled; another requirements/lock/<name>.txt, such as a CPU-only torch
# resolved from PyTorch's CPU index, is a variable away).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${LIKENESS_IMAGE_TAG:-dev}
for tool in buildah python3; do
    command -v "$tool" >/dev/null || { echo "images: $tool is not installed (apt-get install -y buildah podman debootstrap runc)" >&2; exit 1; }
done

eval "$(bash scripts/images_base.sh)"
mkdir -p .run/images
# This machine's pip settings, as one pip.conf for the build containers.
python3 - .run/images/pip.conf .run/images/mounts <<'PY'
import os, subprocess, sys
from pathlib import Path
config = {}
listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
for line in listed.splitlines():
    key, _, value = line.partition("=")
    config[key.split(".", 1)[-1]] = value.strip().strip("'\"")
for key in ("index-url", "extra-index-url", "find-links", "timeout", "default-timeout"):
    env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if env:
        config[key] = env
keep = {k: v for k, v in config.items() if k in ("index-url", "extra-index-url", "find-links", "timeout", "default-timeout")}
mounts = set()
for key in ("extra-index-url", "index-url", "find-links"):
    for item in keep.get(key, "").split():
        path = item.removeprefix("file://")
        if path.startswith("/") and Path(path).exists():
            mounts.add(str(Path(path).parent if key != "find-links" else path))
cert = "/etc/ssl/certs/ca-certificates.crt"
text = "[global]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(keep.items()))
if Path(cert).is_file():
    text += f"cert = {cert}\n"
    mounts.add(cert)
Path(sys.argv[1]).write_text(text)
Path(sys.argv[2]).write_text("".join(f"{m}\n" for m in sorted(mounts)))
PY
volumes=(-v "$PWD/.run/images/pip.conf:/etc/pip.conf:ro")
while read -r path; do volumes+=(-v "$path:$path:ro"); done < .run/images/mounts

services=("$@")
[[ ${#services[@]} -gt 0 ]] || mapfile -t services < <(python3 -c 'import json; print("\n".join(json.load(open("docker-bake.json"))["group"]["default"]["targets"]))')
for service in "${services[@]}"; do
    mapfile -t args < <(python3 - "$service" <<'PY'
import json, sys
target = json.load(open("docker-bake.json"))["target"][sys.argv[1]]
for key, value in target.get("args", {}).items():
    print(f"--build-arg={key}={value}")
PY
)
    [[ $service == faces && -n ${LIKENESS_FACES_LOCK:-} ]] && args+=("--build-arg=LOCK=$LIKENESS_FACES_LOCK")
    base=$RUNTIME_BASE
    grep -q -- '--build-arg=GL=1' <<<"${args[*]}" && base=$RUNTIME_GL_BASE
    start=$SECONDS
    echo "images: building likeness-$service:$TAG" >&2
    buildah bud --quiet --isolation chroot --layers --format oci -f services/Dockerfile \
        "${volumes[@]}" --build-arg "BUILD_BASE=$BUILD_BASE" --build-arg "RUNTIME_BASE=$base" \
        "${args[@]}" -t "localhost/likeness-$service:$TAG" . >".run/images/$service.log" 2>&1 \
        || { tail -n 40 ".run/images/$service.log" >&2; echo "images: likeness-$service failed (log: .run/images/$service.log)" >&2; exit 1; }
    size=$(buildah images --noheading --format '{{.Size}}' "localhost/likeness-$service:$TAG" | head -n1)
    digest=$(buildah images --noheading --digests --format '{{.Digest}}' "localhost/likeness-$service:$TAG" | head -n1)
    echo "images: likeness-$service:$TAG built in $((SECONDS - start)) s, $size, $digest" >&2
done
