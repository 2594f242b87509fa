"""
Build the Elastic Beanstalk source bundle: C{python -m wsecho.bundle}.

The bundle is a zip with, at its top level, the C{Dockerfile}, its
C{.dockerignore}, every source that the Dockerfile's C{COPY} lines name, and
the contents of C{eb/}: C{.ebextensions/} and C{.platform/}. Elastic
Beanstalk unpacks it and builds the image from it, so the Dockerfile builds
the same image from the bundle as from the checkout.

Entries are sorted and carry a fixed timestamp and fixed permissions, so the
same files give the same bytes. The files are taken from the work tree as it
is, the way C{docker build} takes them, and C{.dockerignore} applies.
"""

from __future__ import annotations

import argparse
import glob
import json
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

EB_FOLDER = "eb"
EB_TOP_LEVEL = (".ebextensions", ".platform")
ENVIRONMENT_NAMESPACE = "aws:elasticbeanstalk:application:environment"
PORT_VARIABLE = "SERVER_PORT"

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
"""
The earliest time a zip entry can carry, used for every entry.
"""

FILE_MODE = 0o100644
"""
A regular file readable by everyone, written as every entry's Unix mode.
"""


class BundleError(Exception):
    """
    The bundle cannot be built. The message gives the cause in one line.
    """


@dataclass(frozen=True)
class Instruction:
    """
    One instruction of a Dockerfile.

    @ivar keyword: The instruction in upper case, such as C{COPY}.
    @ivar arguments: The rest of the instruction, continuation lines joined.
    @ivar line: The 1-based line number where the instruction starts.
    @ivar stage: The 0-based index of the build stage it belongs to.
    """

    keyword: str
    arguments: str
    line: int
    stage: int


@dataclass(frozen=True)
class Bundle:
    """
    A bundle that was written.

    @ivar path: Where the zip was written.
    @ivar size: Its size in bytes.
    @ivar names: The entry names, in the order they were written.
    @ivar version: The version of the wheel that the sources build.
    """

    path: Path
    size: int
    names: list[str]
    version: str


def readDockerfile(path: Path) -> list[Instruction]:
    """
    Split a Dockerfile into instructions.

    Comment lines are dropped, also inside continued instructions, and the
    C{escape} parser directive is honoured.

    @raise BundleError: The file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BundleError(f"cannot read {path}: {error.strerror}") from None
    lines = text.splitlines()
    escape = parserDirectives(lines).get("escape", "\\")
    instructions = []
    stage = -1
    index = 0
    while index < len(lines):
        start = index
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        parts = []
        current = stripped
        while current.endswith(escape) and index < len(lines):
            parts.append(current[: -len(escape)])
            current = lines[index].strip()
            index += 1
            while (not current or current.startswith("#")) and index < len(lines):
                current = lines[index].strip()
                index += 1
        parts.append(current)
        joined = " ".join(part.strip() for part in parts if part.strip())
        keyword, _, arguments = joined.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), start + 1, stage))
    return instructions


def parserDirectives(lines: Sequence[str]) -> dict[str, str]:
    """
    Read the C{# name=value} parser directives at the top of a Dockerfile.
    """
    directives = {}
    for line in lines:
        match = re.fullmatch(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*", line)
        if match is None:
            break
        directives[match.group(1).lower()] = match.group(2)
    return directives


def finalStage(instructions: Sequence[Instruction]) -> list[Instruction]:
    """
    Return the instructions of the last build stage, which makes the image.
    """
    last = max((instruction.stage for instruction in instructions), default=-1)
    return [instruction for instruction in instructions if instruction.stage == last]


def exposedPorts(instructions: Sequence[Instruction]) -> list[int]:
    """
    Return the TCP ports that the image exposes, in Dockerfile order.

    @raise BundleError: An C{EXPOSE} names a variable, a range or a UDP port.
    """
    ports = []
    for instruction in finalStage(instructions):
        if instruction.keyword != "EXPOSE":
            continue
        for word in instruction.arguments.split():
            number, _, protocol = word.partition("/")
            if not number.isdigit() or protocol not in ("", "tcp"):
                raise BundleError(
                    f"unsupported EXPOSE {word!r} on Dockerfile line "
                    f"{instruction.line}: expected a literal TCP port such as 8080"
                )
            ports.append(int(number))
    return ports


def imageEnvironment(instructions: Sequence[Instruction]) -> dict[str, str]:
    """
    Return the variables that the image's C{ENV} instructions set.
    """
    environment: dict[str, str] = {}
    for instruction in finalStage(instructions):
        if instruction.keyword == "ENV":
            environment.update(parseEnvArguments(instruction.arguments))
    return environment


def parseEnvArguments(arguments: str) -> dict[str, str]:
    """
    Parse the arguments of C{ENV}: C{NAME=value ...} or the legacy
    C{NAME value} form.
    """
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        name, _, value = arguments.partition(" ")
        return {name: " ".join(shlex.split(value))}
    return dict(word.split("=", 1) for word in words)


def copySources(instructions: Sequence[Instruction]) -> list[tuple[str, int]]:
    """
    Return the build-context sources of every C{COPY} and C{ADD}, with the
    Dockerfile line of each; copies from another stage are left out.

    @raise BundleError: An C{ADD} fetches a URL, which a bundle cannot hold.
    """
    sources = []
    for instruction in instructions:
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = splitCopyArguments(instruction.arguments)
        flags = [word for word in words if word.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue
        paths = [word for word in words if not word.startswith("--")]
        for source in paths[:-1]:
            if re.match(r"[a-z][a-z0-9+.-]*://", source):
                raise BundleError(
                    f"{instruction.keyword} on Dockerfile line {instruction.line} "
                    f"fetches {source}; a bundle can only carry local files"
                )
            sources.append((source, instruction.line))
    return sources


def splitCopyArguments(arguments: str) -> list[str]:
    """
    Split C{COPY} arguments given as words or as a JSON array.
    """
    flags = []
    rest = arguments
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.lstrip()
    if rest.startswith("["):
        return flags + json.loads(rest)
    return flags + rest.split()


class DockerIgnore:
    """
    The patterns of a C{.dockerignore} file, matched the way Docker matches
    them: on paths relative to the build context, where C{*} and C{?} stop
    at C{/}, C{**} spans folders, a pattern that matches a folder excludes
    everything under it, and the last matching pattern (C{!} re-includes)
    decides.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for pattern in patterns:
            pattern = pattern.strip()
            if not pattern or pattern.startswith("#"):
                continue
            negated = pattern.startswith("!")
            if negated:
                pattern = pattern[1:].strip()
            pattern = posixpath.normpath(pattern).lstrip("/")
            self.rules.append((negated, re.compile(patternRegex(pattern))))

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        """
        Read a C{.dockerignore} file; a missing file excludes nothing.
        """
        try:
            return cls(path.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return cls()

    def excludes(self, relative: str) -> bool:
        """
        Tell whether Docker leaves a context path out of the build context.

        @param relative: A path relative to the context, with C{/} separators.
        """
        parts = relative.split("/")
        candidates = ["/".join(parts[: count + 1]) for count in range(len(parts))]
        excluded = False
        for negated, regex in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not negated
        return excluded


def patternRegex(pattern: str) -> str:
    """
    Translate a C{.dockerignore} pattern into a regular expression.
    """
    regex = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                regex.append("(?:.*/)?")
                index += 1
            else:
                regex.append(".*")
            continue
        if character == "*":
            regex.append("[^/]*")
        elif character == "?":
            regex.append("[^/]")
        elif character == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                regex.append(re.escape(character))
            else:
                body = pattern[index + 1 : end]
                if body.startswith(("!", "^")):
                    body = "^" + body[1:]
                regex.append(f"[{body}]")
                index = end
        elif character == "\\" and index + 1 < len(pattern):
            index += 1
            regex.append(re.escape(pattern[index]))
        else:
            regex.append(re.escape(character))
        index += 1
    return "".join(regex)


def readOptionSettings(text: str) -> dict[tuple[str, str], str]:
    """
    Read the C{option_settings} of an C{.ebextensions} config file.

    Only the mapping form is understood, a namespace per key and an option
    per nested key, which is the form the files in C{eb/} use:

        option_settings:
          aws:elasticbeanstalk:application:environment:
            SERVER_PORT: "8080"

    @return: The value of each C{(namespace, option)}, unquoted.
    """
    settings = {}
    inSettings = False
    namespace = None
    namespaceIndent = None
    for rawLine in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", rawLine).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        match = re.fullmatch(r"\s*(.+?):(?:\s+(.*))?", line)
        if indent == 0:
            inSettings = match is not None and match.group(1) == "option_settings"
            namespace = namespaceIndent = None
            continue
        if not inSettings or match is None:
            continue
        key, value = match.group(1), match.group(2)
        if value is None and (namespaceIndent is None or indent <= namespaceIndent):
            namespace, namespaceIndent = key, indent
        elif namespace is not None and value is not None and indent > namespaceIndent:
            settings[(namespace, key)] = unquote(value.strip())
    return settings


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def ebextensionsSettings(ebFolder: Path) -> dict[tuple[str, str], str]:
    """
    Merge the option settings of every C{.ebextensions/*.config}, in the
    alphabetical order Elastic Beanstalk applies them.
    """
    settings: dict[tuple[str, str], str] = {}
    for path in sorted((ebFolder / ".ebextensions").glob("*.config")):
        settings.update(readOptionSettings(path.read_text(encoding="utf-8")))
    return settings


def checkPorts(
    instructions: Sequence[Instruction], settings: dict[tuple[str, str], str]
) -> int:
    """
    Check that C{EXPOSE}, the image's C{SERVER_PORT} and the environment's
    C{SERVER_PORT} name the same port, and return it.

    Elastic Beanstalk's nginx forwards to the first exposed port, and the
    server listens on C{SERVER_PORT}.

    @raise BundleError: There is no C{EXPOSE}, or a port disagrees.
    """
    ports = exposedPorts(instructions)
    if not ports:
        raise BundleError(
            "the Dockerfile has no EXPOSE line; Elastic Beanstalk needs one "
            "(add EXPOSE 8080 to the last stage)"
        )
    exposed = ports[0]
    fromImage = imageEnvironment(instructions).get(PORT_VARIABLE)
    if fromImage is not None and fromImage != str(exposed):
        raise BundleError(
            f"ENV {PORT_VARIABLE}={fromImage} in the Dockerfile does not match "
            f"EXPOSE {exposed}; make them the same port"
        )
    fromEnvironment = settings.get((ENVIRONMENT_NAMESPACE, PORT_VARIABLE))
    if fromEnvironment is not None and fromEnvironment != str(exposed):
        raise BundleError(
            f"{PORT_VARIABLE}: {fromEnvironment} in eb/.ebextensions does not match "
            f"EXPOSE {exposed} in the Dockerfile; make them the same port"
        )
    return exposed


def collectFiles(project: Path) -> dict[str, Path]:
    """
    Map each entry name of the bundle to the file it holds.

    @raise BundleError: Something the bundle needs is missing.
    """
    dockerfile = project / "Dockerfile"
    if not dockerfile.is_file():
        raise BundleError(
            f"no Dockerfile in {project}; run from the top of the wsecho "
            "checkout or pass --project"
        )
    ebFolder = project / EB_FOLDER
    if not ebFolder.is_dir():
        raise BundleError(
            f"no {EB_FOLDER}/ folder in {project}; it must contain .ebextensions/"
        )
    if not sorted((ebFolder / ".ebextensions").glob("*.config")):
        raise BundleError(f"no .ebextensions/*.config files in {ebFolder}")

    instructions = readDockerfile(dockerfile)
    checkPorts(instructions, ebextensionsSettings(ebFolder))

    files = {"Dockerfile": dockerfile}
    dockerignorePath = project / ".dockerignore"
    if dockerignorePath.is_file():
        files[".dockerignore"] = dockerignorePath
    ignore = DockerIgnore.read(dockerignorePath)
    for source, line in copySources(instructions):
        for name, path in contextFiles(project, source, line, ignore):
            files[name] = path
    for folder in EB_TOP_LEVEL:
        for path in sorted((ebFolder / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(ebFolder).as_posix()] = path
    return files


def contextFiles(
    project: Path, source: str, line: int, ignore: DockerIgnore
) -> list[tuple[str, Path]]:
    """
    Return the files that a C{COPY} source takes from the build context.

    @raise BundleError: The source matches nothing that Docker would send.
    """
    cleaned = posixpath.normpath(source).lstrip("/")
    if cleaned.startswith(".."):
        raise BundleError(
            f"COPY source {source!r} on Dockerfile line {line} is outside the "
            "build context"
        )
    if glob.has_magic(cleaned):
        matches = sorted(glob.glob(cleaned, root_dir=project, include_hidden=True))
    else:
        matches = [cleaned] if (project / cleaned).exists() else []
    found = []
    for match in matches:
        path = project / match
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for candidate in candidates:
            relative = candidate.relative_to(project).as_posix()
            if candidate.is_file() and not ignore.excludes(relative):
                found.append((relative, candidate))
    if not found:
        raise BundleError(
            f"COPY source {source!r} on Dockerfile line {line} is missing from "
            f"{project} or excluded by .dockerignore"
        )
    return found


def buildWheel(sources: Path, python: str = sys.executable) -> Path:
    """
    Build the project's wheel from C{sources} with C{pip wheel}, as the
    Dockerfile's build stage does, and return the wheel's path.

    @raise BundleError: pip is missing or the build failed.
    """
    output = sources.parent / "wheel"
    command = [python, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    command += ["--wheel-dir", str(output), str(sources)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BundleError(f"cannot run {python}: {error.strerror}") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        last = lines[-1].strip() if lines else "no output"
        raise BundleError(
            f"building the wheel failed (pip exited with status {result.returncode}): "
            f"{last}"
        )
    wheels = sorted(output.glob("*.whl"))
    if len(wheels) != 1:
        raise BundleError(f"pip wheel wrote {len(wheels)} wheels, expected 1")
    return wheels[0]


def wheelVersion(wheel: Path) -> str:
    """
    Return the version part of a wheel file name.
    """
    return wheel.name.split("-")[1]


def writeZip(files: dict[str, bytes], path: Path) -> list[str]:
    """
    Write C{files} into a zip whose bytes depend only on their names and
    contents, and return the entry names in written order.

    The zip is written next to C{path} and renamed over it, so a failed
    write leaves no half-written bundle behind.
    """
    names = sorted(files)
    temporary = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name in names:
            entry = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            entry.create_system = 3
            entry.external_attr = FILE_MODE << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, files[name], compresslevel=9)
    temporary.replace(path)
    return names


def makeBundle(
    project: Path, outputDirectory: Path, python: str = sys.executable
) -> Bundle:
    """
    Build the wheel from the bundle's own files and write the bundle.

    @param project: The checkout: the Dockerfile and C{eb/} folder's parent.
    @param outputDirectory: Where C{wsecho-<version>-eb.zip} goes.
    @param python: The interpreter whose pip builds the wheel.
    @raise BundleError: Something is missing or inconsistent, or the build
        failed.
    """
    files = collectFiles(project)
    contents = {name: source.read_bytes() for name, source in files.items()}
    with tempfile.TemporaryDirectory(prefix="wsecho-bundle-") as work:
        staging = Path(work) / "context"
        for name, data in contents.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        version = wheelVersion(buildWheel(staging, python))
    outputDirectory.mkdir(parents=True, exist_ok=True)
    path = outputDirectory / f"wsecho-{version}-eb.zip"
    names = writeZip(contents, path)
    return Bundle(path, path.stat().st_size, names, version)


def parseArguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wsecho.bundle",
        description="Build the Elastic Beanstalk source bundle of wsecho: "
        "a zip with the Dockerfile, the sources it copies, .ebextensions/ "
        "and .platform/.",
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        help="the wsecho checkout, which contains the Dockerfile and eb/ "
        "[default: the current folder]",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="the folder the zip is written to [default: PROJECT/dist]",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run C{python -m wsecho.bundle} and return its exit status.
    """
    arguments = parseArguments(argv)
    project = arguments.project.resolve()
    output = arguments.output_dir or project / "dist"
    try:
        bundle = makeBundle(project, output)
    except BundleError as error:
        sys.stderr.write(f"wsecho.bundle: error: {error}\n")
        return 1
    displayPath = bundle.path.resolve()
    if displayPath.is_relative_to(Path.cwd()):
        displayPath = displayPath.relative_to(Path.cwd())
    sys.stdout.write(
        f"{displayPath}: {bundle.size:,} bytes, {len(bundle.names)} files, "
        f"version {bundle.version}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
