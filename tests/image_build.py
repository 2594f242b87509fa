"""
Carry out the Dockerfile's build on this machine, without Docker.

Each stage gets a folder that stands for the container's file system and a
virtual environment that stands for the base image's Python. The stage's
instructions run as Docker would run them: C{COPY} copies from the build
context or from an earlier stage, C{RUN} runs through C{/bin/sh -c} with the
stage's C{ENV} and the virtual environment first on C{PATH}, and the
container paths that the Dockerfile creates (its C{WORKDIR}s and C{COPY}
destinations, such as C{/src}) are rewritten to the stage's folder. The last
stage yields what C{docker run} needs: the environment, user, exposed
ports, health check and command.

Only the instructions that this project's Dockerfile uses are translated.
Any other instruction fails the build with a message that names it, so a
change to the Dockerfile that the translation cannot follow is noticed.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from wsecho.bundle import DockerIgnore, parseEnvArguments

USER_COMMANDS = {"groupadd", "useradd", "adduser", "addgroup"}
"""
Commands that create users in the image. They cannot run on this machine,
whose users are not the test's to change; the run uses C{nobody} instead.
"""

IGNORED_INSTRUCTIONS = {"COMMENT", "LABEL", "STOPSIGNAL", "ARG", "MAINTAINER"}


class UnsupportedDockerfileError(Exception):
    """
    The Dockerfile uses something the translation does not understand.
    """


@dataclass
class Stage:
    """
    One build stage: its name, base image and instructions.
    """

    index: int
    name: str | None
    base: str
    instructions: list[dict]


@dataclass
class StageResult:
    """
    A stage after its instructions ran.

    @ivar root: The folder that stands for the stage's file system.
    @ivar python: The virtual environment that stands for its Python.
    """

    stage: Stage
    root: Path
    python: Path
    environment: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    exposed: list[int] = field(default_factory=list)
    command: list[str] | None = None
    healthcheck: list[str] | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def bin(self) -> Path:
        return self.python / "bin"

    def hostPath(self, containerPath: str) -> Path:
        """
        Map a path inside the stage's container to this machine.
        """
        absolute = (
            containerPath
            if containerPath.startswith("/")
            else f"{self.workdir}/{containerPath}"
        )
        return self.root / os.path.normpath(absolute).lstrip("/")


def readStages(dockerfile: Path) -> list[Stage]:
    """
    Parse a Dockerfile with dockerfile-parse and split it into stages.
    """
    parser = DockerfileParser(path=str(dockerfile))
    stages: list[Stage] = []
    for instruction in parser.structure:
        keyword = instruction["instruction"]
        if keyword == "FROM":
            words = instruction["value"].split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(len(stages), name, words[0], []))
        elif keyword != "COMMENT":
            if not stages:
                raise UnsupportedDockerfileError(f"{keyword} before the first FROM")
            stages[-1].instructions.append(instruction)
    return stages


def pythonVersionOf(base: str) -> str:
    """
    Return the Python version that an official python image tag names.

    @raise UnsupportedDockerfileError: The base is not C{python:X.Y...}.
    """
    match = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?(?:-[\w.-]+)?", base)
    if match is None:
        raise UnsupportedDockerfileError(
            f"base image {base!r} is not an official python:X.Y image; "
            "the test stands in for it with a local Python of that version"
        )
    return match.group(1)


def containerRoots(stages: list[Stage]) -> set[str]:
    """
    Return the first components of the container paths the Dockerfile
    creates or copies, which RUN lines may name.
    """
    roots = set()
    for stage in stages:
        for instruction in stage.instructions:
            keyword = instruction["instruction"]
            if keyword == "WORKDIR":
                paths = [instruction["value"]]
            elif keyword == "COPY":
                paths = copyArguments(instruction["value"])[1]
            else:
                continue
            for path in paths:
                if path.startswith("/") and path.strip("/"):
                    roots.add(path.strip("/").split("/")[0])
    return roots


def copyArguments(value: str) -> tuple[dict[str, str], list[str]]:
    """
    Split C{COPY} arguments into its flags and its paths.
    """
    words = shlex.split(value) if not value.lstrip().startswith("[") else []
    flags = {}
    while words and words[0].startswith("--"):
        name, _, flagValue = words.pop(0)[2:].partition("=")
        flags[name] = flagValue
    if not words:
        rest = value
        for name in flags:
            rest = re.sub(rf"--{name}\S*\s*", "", rest, count=1)
        words = json.loads(rest)
    return flags, words


class ImageBuild:
    """
    Build the image's stages in C{work} from the build context C{context}.

    @ivar interpreter: The Python that stands for the base image's.
    """

    def __init__(self, context: Path, work: Path, interpreter: str) -> None:
        self.context = context
        self.work = work
        self.interpreter = interpreter
        self.ignore = DockerIgnore.read(context / ".dockerignore")
        self.results: list[StageResult] = []
        self.log: list[str] = []

    def build(self, stages: list[Stage], lastStage: int | None = None) -> StageResult:
        """
        Run the stages up to C{lastStage} (the last one by default) and
        return the result of the last one run.
        """
        self.roots = containerRoots(stages)
        end = len(stages) if lastStage is None else lastStage + 1
        for stage in stages[:end]:
            self.results.append(self.buildStage(stage))
        return self.results[-1]

    def buildStage(self, stage: Stage) -> StageResult:
        pythonVersionOf(stage.base)
        root = self.work / f"stage-{stage.index}"
        root.mkdir(parents=True)
        python = self.work / f"stage-{stage.index}-python"
        subprocess.run(
            [self.interpreter, "-m", "venv", str(python)], check=True, timeout=300
        )
        result = StageResult(stage, root, python)
        for instruction in stage.instructions:
            self.apply(result, instruction)
        return result

    def apply(self, result: StageResult, instruction: dict) -> None:
        keyword = instruction["instruction"]
        value = instruction["value"]
        line = instruction["startline"] + 1
        if keyword == "WORKDIR":
            result.workdir = os.path.normpath(
                value if value.startswith("/") else f"{result.workdir}/{value}"
            )
            result.hostPath(result.workdir).mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            self.copy(result, value, line)
        elif keyword == "RUN":
            self.run(result, value, line)
        elif keyword == "ENV":
            result.environment.update(parseEnvArguments(value))
        elif keyword == "USER":
            result.user = value.strip()
        elif keyword == "EXPOSE":
            result.exposed.extend(int(word.split("/")[0]) for word in value.split())
        elif keyword == "CMD":
            result.command = execForm(value, "CMD", line)
        elif keyword == "HEALTHCHECK":
            result.healthcheck = healthcheckCommand(value, line)
        elif keyword not in IGNORED_INSTRUCTIONS:
            raise UnsupportedDockerfileError(
                f"{keyword} on Dockerfile line {line} is not translated"
            )

    def copy(self, result: StageResult, value: str, line: int) -> None:
        flags, paths = copyArguments(value)
        unknown = set(flags) - {"from", "chown", "chmod", "link"}
        if unknown:
            raise UnsupportedDockerfileError(
                f"COPY --{unknown.pop()} on Dockerfile line {line}"
            )
        *sources, destination = paths
        target = result.hostPath(destination)
        intoFolder = destination.endswith("/") or len(sources) > 1
        for source in sources:
            for path in self.copySources(flags.get("from"), source, line):
                if path.is_dir():
                    self.copyFolder(path, target)
                else:
                    place = (
                        target / path.name if intoFolder or target.is_dir() else target
                    )
                    place.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, place)

    def copySources(self, fromStage: str | None, source: str, line: int) -> list[Path]:
        if fromStage is None:
            matches = sorted(glob.glob(source, root_dir=self.context))
            paths = [self.context / match for match in matches]
            paths = [
                path for path in paths if not self.ignore.excludes(self.relative(path))
            ]
        else:
            stage = self.stageResult(fromStage, line)
            pattern = str(stage.hostPath(source))
            paths = [Path(match) for match in sorted(glob.glob(pattern))]
        if not paths:
            raise AssertionError(
                f"COPY source {source!r} on Dockerfile line {line} matched nothing"
            )
        return paths

    def copyFolder(self, source: Path, target: Path) -> None:
        """
        Copy a folder's contents as Docker does, leaving out what
        .dockerignore excludes when the folder is in the build context.
        """
        inContext = source.is_relative_to(self.context)
        for path in sorted(source.rglob("*")):
            if inContext and self.ignore.excludes(self.relative(path)):
                continue
            place = target / path.relative_to(source)
            if path.is_dir():
                place.mkdir(parents=True, exist_ok=True)
            else:
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, place)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.context).as_posix()

    def stageResult(self, name: str, line: int) -> StageResult:
        for result in self.results:
            if result.stage.name == name or str(result.stage.index) == name:
                return result
        raise UnsupportedDockerfileError(
            f"COPY --from={name} on Dockerfile line {line}: no such stage"
        )

    def run(self, result: StageResult, command: str, line: int) -> None:
        """
        Run a shell-form C{RUN} in the stage, or skip it when it only
        creates users.
        """
        if command.lstrip().startswith("["):
            raise UnsupportedDockerfileError(f"exec-form RUN on Dockerfile line {line}")
        programs = set(commandNames(command))
        if programs & USER_COMMANDS:
            if programs - USER_COMMANDS:
                raise UnsupportedDockerfileError(
                    f"RUN on Dockerfile line {line} mixes user creation with other "
                    "commands; keep user creation in a RUN of its own"
                )
            result.skipped.append(command)
            return

        translated = self.translate(result, command)
        self.log.append(f"RUN (line {line}): {translated}")
        environment = dict(result.environment)
        environment["PATH"] = f"{result.bin}{os.pathsep}/usr/bin{os.pathsep}/bin"
        environment.setdefault("HOME", str(self.work / "home"))

        completed = subprocess.run(
            ["/bin/sh", "-c", translated],
            cwd=result.hostPath(result.workdir),
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"RUN on Dockerfile line {line} failed with status "
                f"{completed.returncode}: {translated}\n"
                f"{completed.stdout}\n{completed.stderr}"
            )

    def translate(self, result: StageResult, command: str) -> str:
        """
        Rewrite the container paths of a command to the stage's folder.
        """
        if not self.roots:
            return command
        alternatives = "|".join(re.escape(root) for root in sorted(self.roots))
        pattern = re.compile(rf"(?<![\w./-])/({alternatives})(?=[/\s\"']|$)")
        return pattern.sub(lambda match: str(result.root / match.group(1)), command)


def commandNames(command: str) -> list[str]:
    """
    Return the program of each simple command in a shell command line.
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    names = []
    expectName = True
    for token in lexer:
        if token in ("&&", "||", ";", "|", "&"):
            expectName = True
        elif expectName:
            names.append(token)
            expectName = False
    return names


def execForm(value: str, keyword: str, line: int) -> list[str]:
    """
    Read an exec-form C{CMD} or C{HEALTHCHECK CMD}.

    @raise UnsupportedDockerfileError: It is in shell form, which would put a
        shell between Docker's SIGTERM and twistd.
    """
    try:
        words = json.loads(value)
    except ValueError:
        raise UnsupportedDockerfileError(
            f"{keyword} on Dockerfile line {line} is not in exec form: {value}"
        ) from None
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise UnsupportedDockerfileError(
            f"{keyword} on Dockerfile line {line} is not a list of strings"
        )
    return words


def healthcheckCommand(value: str, line: int) -> list[str] | None:
    """
    Return the command of a C{HEALTHCHECK}, or L{None} for C{NONE}.
    """
    if value.strip().upper() == "NONE":
        return None
    match = re.search(r"\bCMD\s+(.*)$", value, re.DOTALL)
    if match is None:
        raise UnsupportedDockerfileError(
            f"HEALTHCHECK on Dockerfile line {line} has no CMD"
        )
    return execForm(match.group(1), "HEALTHCHECK CMD", line)
