"""Security scans that gate CI: static analysis of our code and an audit of the dependency versions we ship.

    python scripts/security_scan.py code                 # bandit over libs/, services/, scripts/, bench/
    python scripts/security_scan.py deps [--lock FILE]   # every pinned version against known advisories
                                         [--advisories DIR] [--offline]

What fails (the documented threshold, also in README.md "Security scans"):
  code  a bandit finding of MEDIUM or HIGH severity with MEDIUM or HIGH confidence;
  deps  any advisory that affects a version we install. PyPI's advisories carry no severity, so every one counts.
Either is let through only by an entry in security/allowlist.toml that names it and gives a reason; an entry with
no reason, or one that no longer matches anything, is itself an error (allow-lists rot otherwise).

Advisory sources for `deps`, all that answer are used:
  * PyPI's JSON API (`/pypi/<name>/<version>/json`, the source pip-audit uses), unless --offline;
  * a folder of OSV records (--advisories, e.g. a checkout of github.com/pypa/advisory-database), for machines
    without that API. A package that no source could answer for is listed as not audited.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = ROOT / "security" / "allowlist.toml"
CODE_PATHS = ("libs", "services", "scripts", "bench")
# Tests assert on purpose and generated protobuf code is not ours to fix.
CODE_EXCLUDES = ("*/tests/*", "*/tests", "libs/protos/likeness", "*/.venv/*")
RANKS = {"UNDEFINED": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}
FAIL_SEVERITY = "MEDIUM"
FAIL_CONFIDENCE = "MEDIUM"


@dataclass(frozen=True)
class Finding:
    kind: str  # "bandit" or "advisory"
    key: tuple[str, ...]  # what an allow-list entry must name
    text: str


@dataclass
class Allowlist:
    entries: dict[tuple[str, ...], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Allowlist:
        out = cls()
        if not path.is_file():
            return out
        data = tomllib.loads(path.read_text())
        for entry in data.get("bandit", []):
            key = ("bandit", str(entry.get("test_id", "")), str(entry.get("path", "")), str(entry.get("code", "")).strip())
            out._add(key, entry)
        for entry in data.get("advisory", []):
            key = ("advisory", str(entry.get("id", "")), canonicalize_name(str(entry.get("package", ""))))
            out._add(key, entry)
        return out

    def _add(self, key: tuple[str, ...], entry: dict[str, object]) -> None:
        reason = str(entry.get("reason", "")).strip()
        if not all(key) or len(reason) < 15:
            self.errors.append(f"allow-list entry {dict(entry)} needs every field and a reason of a sentence")
            return
        self.entries[key] = reason

    def split(self, findings: Iterable[Finding], kind: str) -> tuple[list[Finding], list[Finding]]:
        """(failing, allowed); also records entries of this kind that matched nothing."""
        failing, allowed, used = [], [], set()
        for finding in findings:
            if finding.key in self.entries:
                allowed.append(finding)
                used.add(finding.key)
            else:
                failing.append(finding)
        for key in self.entries:
            if key[0] == kind and key not in used:
                self.errors.append(f"allow-list entry {key} matches nothing any more: remove it")
        return failing, allowed


# ---------------------------------------------------------------- code


def bandit_findings(paths: Iterable[Path], root: Path = ROOT) -> list[Finding]:
    cmd = [sys.executable, "-m", "bandit", "-q", "-r", "-f", "json", "--ignore-nosec", "-x", ",".join(CODE_EXCLUDES), *map(str, paths)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"bandit did not run: {proc.stderr.strip() or proc.returncode}")
    report = json.loads(proc.stdout)
    if report.get("errors"):
        raise SystemExit(f"bandit could not read: {report['errors']}")
    out = []
    for r in report["results"]:
        if RANKS[r["issue_severity"]] < RANKS[FAIL_SEVERITY] or RANKS[r["issue_confidence"]] < RANKS[FAIL_CONFIDENCE]:
            continue
        path = str((root / r["filename"]).resolve().relative_to(root.resolve()))
        line = _source_line(root / path, r["line_number"])
        out.append(
            Finding(
                "bandit",
                ("bandit", r["test_id"], path, line),
                f"{path}:{r['line_number']} {r['test_id']} {r['issue_severity']}/{r['issue_confidence']}: {r['issue_text']}",
            )
        )
    return out


def _source_line(path: Path, number: int) -> str:
    # Allow-list entries name the code line, not its number, so they survive edits above it.
    lines = path.read_text(errors="replace").splitlines()
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


# ---------------------------------------------------------------- dependencies


def pins_from_lock(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements or lock file (hashes, markers and comments ignored)."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(3)
    if not pins:
        raise SystemExit(f"{path}: no `name==version` pins found")
    return pins


def pins_from_environment() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def _affects(record: dict, name: str, version: str) -> bool:
    try:
        ours = Version(version)
    except InvalidVersion:
        return False
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonicalize_name(package.get("name", "")) != name:
            continue
        if version in affected.get("versions", []):
            return True
        for rng in affected.get("ranges", []):
            if rng.get("type") == "ECOSYSTEM" and _in_range(ours, rng.get("events", [])):
                return True
    return False


def _in_range(ours: Version, events: list[dict]) -> bool:
    """OSV ECOSYSTEM range: sorted events; inside after an `introduced` until the next `fixed`/`last_affected`."""
    inside = False
    points = []
    for event in events:
        for kind, raw in event.items():
            bound = Version("0") if raw == "0" else _version_or_none(raw)
            if bound is not None:
                points.append((bound, kind))
    for bound, kind in sorted(points, key=lambda p: p[0]):
        if kind == "introduced" and ours >= bound:
            inside = True
        elif (kind == "fixed" and ours >= bound) or (kind == "last_affected" and ours > bound):
            inside = False
    return inside


def _version_or_none(raw: str) -> Version | None:
    try:
        return Version(raw)
    except InvalidVersion:
        return None


def osv_records(folder: Path, names: Iterable[str] = ()) -> Iterator[dict]:
    """OSV records in `folder`; where it is laid out by package (the PyPA database: vulns/<name>/), only those named."""
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no such folder of advisories")
    if not any(folder.rglob("*.json")) and not any(folder.rglob("*.yaml")):
        raise SystemExit(f"{folder}: holds no OSV records (.json, .yaml)")
    by_package = {canonicalize_name(p.name): p for p in folder.iterdir() if p.is_dir()}
    wanted = [by_package[n] for n in names if n in by_package]
    for path in sorted(f for base in (wanted or [folder]) for f in base.rglob("*")):
        if path.suffix == ".json":
            record = json.loads(path.read_text())
        elif path.suffix in (".yaml", ".yml"):
            import yaml  # the PyPA advisory database is YAML

            record = yaml.safe_load(path.read_text())
        else:
            continue
        if isinstance(record, dict) and not record.get("withdrawn"):
            yield record


def advisories_offline(pins: dict[str, str], folder: Path) -> tuple[list[Finding], set[str]]:
    findings = []
    for record in osv_records(folder, pins):
        for name, version in pins.items():
            if _affects(record, name, version):
                fixed = _fixed_versions(record, name)
                findings.append(
                    Finding("advisory", ("advisory", record["id"], name), f"{name}=={version}: {record['id']} (fixed in {fixed})")
                )
    return findings, set(pins)


def _fixed_versions(record: dict, name: str) -> str:
    fixed = [
        e["fixed"]
        for a in record.get("affected", [])
        if canonicalize_name(a.get("package", {}).get("name", "")) == name
        for r in a.get("ranges", [])
        for e in r.get("events", [])
        if "fixed" in e
    ]
    return ", ".join(fixed) or "no release"


def advisories_pypi(pins: dict[str, str], base: str = "https://pypi.org/pypi", timeout: float = 10.0) -> tuple[list[Finding], set[str]]:
    findings, answered = [], set()
    for name, version in sorted(pins.items()):
        try:
            with urllib.request.urlopen(f"{base}/{name}/{version}/json", timeout=timeout) as resp:
                data = json.load(resp)
        except (urllib.error.URLError, TimeoutError, ValueError):
            continue
        answered.add(name)
        for vuln in data.get("vulnerabilities", []):
            if vuln.get("withdrawn"):
                continue
            fixed = ", ".join(vuln.get("fixed_in", [])) or "no release"
            findings.append(Finding("advisory", ("advisory", vuln["id"], name), f"{name}=={version}: {vuln['id']} (fixed in {fixed})"))
    return findings, answered


# ---------------------------------------------------------------- main


def report(kind: str, findings: list[Finding], allow: Allowlist) -> int:
    failing, allowed = allow.split(findings, kind)
    for finding in allowed:
        print(f"allowed  {finding.text}  ({allow.entries[finding.key]})")
    for finding in failing:
        print(f"FAIL     {finding.text}")
    for error in allow.errors:
        print(f"FAIL     {error}")
    print(f"{kind}: {len(failing)} failing, {len(allowed)} allowed by security/allowlist.toml")
    return 1 if failing or allow.errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    sub = parser.add_subparsers(dest="scan", required=True)
    code = sub.add_parser("code", help="bandit over our own code")
    code.add_argument("paths", nargs="*", type=Path, default=[Path(p) for p in CODE_PATHS])
    code.add_argument("--root", type=Path, default=ROOT)
    deps = sub.add_parser("deps", help="pinned versions against known advisories")
    deps.add_argument("--lock", type=Path, help="a pinned requirements/lock file (default: this environment's packages)")
    deps.add_argument("--advisories", type=Path, help="a folder of OSV records (JSON or the PyPA database's YAML)")
    deps.add_argument("--offline", action="store_true", help="do not ask PyPI's JSON API")
    deps.add_argument("--pypi", default="https://pypi.org/pypi", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    allow = Allowlist.load(args.allowlist)

    if args.scan == "code":
        return report("bandit", bandit_findings(args.paths, args.root), allow)

    pins = pins_from_lock(args.lock) if args.lock else pins_from_environment()
    findings: list[Finding] = []
    answered: set[str] = set()
    if args.advisories:
        found, seen = advisories_offline(pins, args.advisories)
        findings += found
        answered |= seen
    if not args.offline:
        found, seen = advisories_pypi(pins, args.pypi)
        findings += [f for f in found if f not in findings]
        answered |= seen
    missing = sorted(set(pins) - answered)
    print(f"deps: {len(pins)} pinned packages, {len(answered)} audited")
    if missing:
        print(
            f"deps: no advisory source answered for {len(missing)} packages: {', '.join(missing[:12])}{' …' if len(missing) > 12 else ''}"
        )
    return report("advisory", findings, allow)


if __name__ == "__main__":
    raise SystemExit(main())
