"""Each service's Dockerfile parsed (with the build arguments docker-bake.json gives it), and .dockerignore."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]
    args: str  # with ${NAME} of the build arguments in scope replaced by their values
    line: int
    raw: str = ""  # as written

    def exec_form(self) -> list[str] | None:
        text = self.args.strip()
        if text.startswith("["):
            return json.loads(text)
        return None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise AssertionError(f"{self.path}: no stage named {name!r}")

    def final_env(self) -> dict[str, str]:
        """ENV of the image (values as written, without quotes)."""
        env: dict[str, str] = {}
        for inst in self.final.all("ENV"):
            for match in re.finditer(r"(\w+)=(\S+)", inst.args):
                env[match.group(1)] = match.group(2)
        return env

    def entry_command(self) -> list[str]:
        """The command the image runs, a `sh -c` entry point resolved against its ENV."""
        (entrypoint,) = self.final.all("ENTRYPOINT")
        command = entrypoint.exec_form()
        assert command, f"{self.path}: ENTRYPOINT must be in exec form"
        if command[:2] != ["/bin/sh", "-c"]:
            return command
        env = self.final_env()
        words = shlex.split(_VARIABLE.sub(lambda m: env[m.group(1)], command[2]))
        assert words[0] == "exec", "the shell must exec the service, so that it is PID 1 and gets SIGTERM"
        assert words[-1] == "$@", "arguments given to the container must reach the service"
        return words[1:-1]

    def copies(self) -> list[tuple[Stage, Instruction, list[str], str]]:
        """Every COPY/ADD as (stage, instruction, sources, destination)."""
        out = []
        for stage in self.stages:
            for inst in stage.instructions:
                if inst.keyword in ("COPY", "ADD"):
                    parts = inst.exec_form() or shlex.split(inst.args)
                    out.append((stage, inst, parts[:-1], parts[-1]))
        return out


_FLAG = re.compile(r"^--([a-z-]+)(?:=(\S*))?\s+")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def parse_dockerfile(path: Path, build_args: dict[str, str] | None = None) -> Dockerfile:
    """A parser for the subset of Dockerfile syntax the repository uses (no heredocs).

    As `docker build --build-arg` would, `build_args` override ARG defaults; `${NAME}` of an
    ARG in scope (declared in the stage, a global ARG re-declared there) is replaced by its
    value in every instruction but FROM, RUN included (where the shell would expand it)."""
    build_args = build_args or {}
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append((start, pending + stripped))
        pending = ""
    assert not pending, f"{path}: file ends inside a line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    scope: dict[str, str] = {}
    for number, text in logical:
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while (m := _FLAG.match(rest + " ")) and keyword != "RUN":
            flags[m.group(1)] = m.group(2) or ""
            rest = (rest + " ")[m.end() :].strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
            scope = {}
        elif not stages:
            assert keyword == "ARG", f"{path}:{number}: only ARG may precede the first FROM"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            expanded = _VARIABLE.sub(lambda m, scope=scope: scope.get(m.group(1), m.group(0)), rest)
            stages[-1].instructions.append(Instruction(keyword, flags, expanded, number, rest))
            if keyword == "ARG":
                # A default may name an ARG already in scope (ARG LOCK=${SERVICE}).
                key, has_default, default = expanded.partition("=")
                if not has_default:
                    default = global_args.get(key, "")
                elif default[:1] in "\"'" and default[:1] == default[-1:] and len(default) > 1:
                    default = default[1:-1]  # Docker removes the quotes of ARG X="..."
                scope[key] = build_args.get(key, default)
    return Dockerfile(path, global_args, stages, dict(build_args))


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern (Go filepath.Match plus `**`) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


@dataclass
class DockerIgnore:
    rules: list[tuple[bool, re.Pattern[str]]]

    @classmethod
    def load(cls, path: Path) -> DockerIgnore:
        rules = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((negate, _ignore_regex(line)))
        return cls(rules)

    def excluded(self, rel: str) -> bool:
        """Whether the builder leaves `rel` (a file path) out of the context. As in
        moby's patternmatcher, a pattern also matches everything below a matching folder."""
        parents = [rel]
        parts = rel.split("/")
        parents += ["/".join(parts[:n]) for n in range(1, len(parts))]
        result = False
        for negate, regex in self.rules:
            if any(regex.match(p) for p in parents):
                result = not negate
        return result
