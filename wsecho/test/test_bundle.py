"""
Tests for L{wsecho.bundle}: the Dockerfile and .dockerignore readers, the
checks that refuse an inconsistent bundle, and the bundle of this checkout.
"""

from __future__ import annotations

import functools
import io
import sys
import tempfile
import zipfile
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

import wsecho
from wsecho import bundle
from wsecho.bundle import (
    BundleError,
    DockerIgnore,
    checkPorts,
    collectFiles,
    copySources,
    ebextensionsSettings,
    exposedPorts,
    imageEnvironment,
    readDockerfile,
    readOptionSettings,
    writeZip,
)
from wsecho.settings import Settings

CHECKOUT = Path(wsecho.__file__).resolve().parent.parent

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml \\
    # a comment inside a continued instruction
    setup.cfg ./
COPY app ./app
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
ENV SERVER_PORT=8080 OTHER="a b"
ENV LEGACY value with spaces
EXPOSE 8080/tcp 9090
CMD ["twistd", "-n", "wsecho"]
"""

CONFIG = """\
# A comment
option_settings:
  aws:elasticbeanstalk:application:environment:
    SERVER_PORT: "8080"   # a trailing comment
    OTHER: 'x'
  aws:autoscaling:asg:
    Availability Zones: Any 2
    MinSize: 2
files:
  /etc/example:
    content: ignored
"""


def writeProject(
    root: Path, dockerfile: str = DOCKERFILE, config: str = CONFIG
) -> Path:
    """
    Write a small project with a Dockerfile, sources and an eb/ folder.
    """
    (root / "app" / "__pycache__").mkdir(parents=True)
    (root / "app" / "main.py").write_text('print("hello")\n')
    (root / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    (root / "pyproject.toml").write_text('[project]\nname = "example"\nversion = "0"\n')
    (root / "setup.cfg").write_text("[metadata]\n")
    (root / "Dockerfile").write_text(dockerfile)
    (root / ".dockerignore").write_text("**/__pycache__\n")
    extensions = root / "eb" / ".ebextensions"
    extensions.mkdir(parents=True)
    (extensions / "01-test.config").write_text(config)
    dropIns = root / "eb" / ".platform" / "nginx" / "conf.d" / "elasticbeanstalk"
    dropIns.mkdir(parents=True)
    (dropIns / "timeouts.conf").write_text("proxy_read_timeout 300s;\n")
    (root / "eb" / "README.md").write_text("not bundled\n")
    return root


class DockerfileReaderTests(SynchronousTestCase):
    """
    L{readDockerfile} and the helpers that read its instructions.
    """

    def setUp(self):
        path = Path(self.mktemp())
        path.write_text(DOCKERFILE)
        self.instructions = readDockerfile(path)

    def test_instructions(self):
        """
        Instructions come with their line and stage; continuation lines are
        joined and comments inside them dropped.
        """
        keywords = [(item.keyword, item.line, item.stage) for item in self.instructions]
        self.assertEqual(
            keywords[:5],
            [
                ("FROM", 2, 0),
                ("WORKDIR", 3, 0),
                ("COPY", 4, 0),
                ("COPY", 7, 0),
                ("RUN", 8, 0),
            ],
        )
        self.assertEqual(self.instructions[2].arguments, "pyproject.toml setup.cfg ./")
        self.assertEqual(self.instructions[5].stage, 1)

    def test_exposedPorts(self):
        """
        EXPOSE ports of the last stage are read in order, with or without a
        protocol.
        """
        self.assertEqual(exposedPorts(self.instructions), [8080, 9090])

    def test_environment(self):
        """
        Both forms of ENV are read, quotes removed.
        """
        self.assertEqual(
            imageEnvironment(self.instructions),
            {"SERVER_PORT": "8080", "OTHER": "a b", "LEGACY": "value with spaces"},
        )

    def test_copySources(self):
        """
        COPY sources from the build context are listed with their line;
        copies from another stage are not.
        """
        self.assertEqual(
            copySources(self.instructions),
            [("pyproject.toml", 4), ("setup.cfg", 4), ("app", 7)],
        )

    def test_jsonCopy(self):
        """
        COPY in JSON form gives the same sources.
        """
        path = Path(self.mktemp())
        path.write_text(
            'FROM python:3.11-slim\nCOPY --chown=1:1 ["a b", "c", "/dest/"]\n'
        )
        self.assertEqual(copySources(readDockerfile(path)), [("a b", 2), ("c", 2)])

    def test_variablePortRejected(self):
        """
        An EXPOSE with a variable cannot be checked and is rejected.
        """
        path = Path(self.mktemp())
        path.write_text("FROM python:3.11-slim\nEXPOSE $PORT\n")
        error = self.assertRaises(BundleError, exposedPorts, readDockerfile(path))
        self.assertIn("unsupported EXPOSE '$PORT' on Dockerfile line 2", str(error))

    def test_urlRejected(self):
        """
        ADD from a URL cannot go into a bundle.
        """
        path = Path(self.mktemp())
        path.write_text("FROM python:3.11-slim\nADD https://example.com/x /x\n")
        error = self.assertRaises(BundleError, copySources, readDockerfile(path))
        self.assertIn("fetches https://example.com/x", str(error))


class DockerIgnoreTests(SynchronousTestCase):
    """
    L{DockerIgnore} matches paths as Docker does.
    """

    def test_table(self):
        """
        Folders exclude their contents, C{*} stops at C{/}, C{**} spans
        folders, and the last matching pattern wins.
        """
        ignore = DockerIgnore(
            [
                "# comment",
                "",
                "tests",
                "/build",
                "*.zip",
                "**/__pycache__",
                "docs/*.md",
                "!docs/keep.md",
            ]
        )
        cases = [
            ("tests", True),
            ("tests/test_a.py", True),
            ("build/lib/x.py", True),
            ("bundle.zip", True),
            ("dist/bundle.zip", False),
            ("wsecho/__pycache__/a.pyc", True),
            ("__pycache__/a.pyc", True),
            ("docs/a.md", True),
            ("docs/keep.md", False),
            ("docs/sub/a.md", False),
            ("wsecho/tests.py", False),
            ("wsecho/echo.py", False),
        ]
        for path, excluded in cases:
            self.assertEqual(ignore.excludes(path), excluded, path)

    def test_characterClass(self):
        """
        C{[...]} and C{?} match one character.
        """
        ignore = DockerIgnore(["**/*.py[cod]", "a?c"])
        self.assertTrue(ignore.excludes("x/y.pyc"))
        self.assertFalse(ignore.excludes("x/y.py"))
        self.assertTrue(ignore.excludes("abc"))
        self.assertFalse(ignore.excludes("a/c"))

    def test_missingFile(self):
        """
        Without a .dockerignore nothing is excluded.
        """
        self.assertFalse(DockerIgnore.read(Path(self.mktemp())).excludes("anything"))


class OptionSettingsTests(SynchronousTestCase):
    """
    L{readOptionSettings} reads the mapping form of option_settings.
    """

    def test_read(self):
        """
        Namespaces with colons, option names with spaces, quotes and
        comments are handled; other top-level keys are ignored.
        """
        self.assertEqual(
            readOptionSettings(CONFIG),
            {
                ("aws:elasticbeanstalk:application:environment", "SERVER_PORT"): "8080",
                ("aws:elasticbeanstalk:application:environment", "OTHER"): "x",
                ("aws:autoscaling:asg", "Availability Zones"): "Any 2",
                ("aws:autoscaling:asg", "MinSize"): "2",
            },
        )


class RejectionTests(SynchronousTestCase):
    """
    C{python -m wsecho.bundle} refuses an incomplete or inconsistent project
    with one line on standard error and status 1.
    """

    def setUp(self):
        self.project = writeProject(Path(self.mktemp()))
        self.project.mkdir(exist_ok=True)

    def rejection(self) -> str:
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        status = bundle.main(
            ["--project", str(self.project), "--output-dir", self.mktemp()]
        )
        self.assertEqual(status, 1)
        text = stderr.getvalue()
        self.assertTrue(text.startswith("wsecho.bundle: error: "), text)
        self.assertEqual(text.count("\n"), 1, text)
        self.assertNotIn("Traceback", text)
        return text

    def test_noDockerfile(self):
        """
        A project without a Dockerfile is refused.
        """
        (self.project / "Dockerfile").unlink()
        self.assertIn(f"no Dockerfile in {self.project.resolve()}", self.rejection())

    def test_noEbFolder(self):
        """
        A project without eb/ is refused.
        """
        for path in sorted((self.project / "eb").rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        (self.project / "eb").rmdir()
        self.assertIn("no eb/ folder", self.rejection())

    def test_noConfig(self):
        """
        An eb/ folder without .ebextensions/*.config is refused.
        """
        (self.project / "eb" / ".ebextensions" / "01-test.config").unlink()
        self.assertIn("no .ebextensions/*.config files", self.rejection())

    def test_noExpose(self):
        """
        A Dockerfile without EXPOSE is refused, as Elastic Beanstalk would.
        """
        (self.project / "Dockerfile").write_text(
            DOCKERFILE.replace("EXPOSE 8080/tcp 9090\n", "")
        )
        self.assertIn("the Dockerfile has no EXPOSE line", self.rejection())

    def test_imagePortDiffers(self):
        """
        SERVER_PORT in the Dockerfile must be the first EXPOSE port.
        """
        (self.project / "Dockerfile").write_text(
            DOCKERFILE.replace("SERVER_PORT=8080", "SERVER_PORT=80")
        )
        self.assertIn(
            "ENV SERVER_PORT=80 in the Dockerfile does not match EXPOSE 8080",
            self.rejection(),
        )

    def test_environmentPortDiffers(self):
        """
        SERVER_PORT in .ebextensions must be the first EXPOSE port.
        """
        config = self.project / "eb" / ".ebextensions" / "01-test.config"
        config.write_text(CONFIG.replace('"8080"', '"80"'))
        self.assertIn(
            "SERVER_PORT: 80 in eb/.ebextensions does not match EXPOSE 8080",
            self.rejection(),
        )

    def test_copySourceMissing(self):
        """
        A COPY source that does not exist is refused with its line.
        """
        (self.project / "setup.cfg").unlink()
        self.assertIn(
            "COPY source 'setup.cfg' on Dockerfile line 4 is missing", self.rejection()
        )

    def test_copySourceIgnored(self):
        """
        A COPY source that .dockerignore excludes is refused, as Docker
        would fail to copy it.
        """
        (self.project / ".dockerignore").write_text("app\n")
        self.assertIn(
            "COPY source 'app' on Dockerfile line 7 is missing", self.rejection()
        )

    def test_buildFails(self):
        """
        A wheel build that fails is reported in one line with pip's status.
        """
        (self.project / "pyproject.toml").write_text(
            '[build-system]\nrequires = []\nbuild-backend = "no_such_backend"\n'
        )
        self.assertIn(
            "building the wheel failed (pip exited with status", self.rejection()
        )


class LayoutTests(SynchronousTestCase):
    """
    L{collectFiles} and L{writeZip} on a small project.
    """

    def setUp(self):
        self.project = writeProject(Path(self.mktemp()))

    def test_files(self):
        """
        The bundle contains the Dockerfile, .dockerignore, the COPY sources
        less what .dockerignore excludes, and eb/'s two folders at the top.
        """
        self.assertEqual(
            sorted(collectFiles(self.project)),
            [
                ".dockerignore",
                ".ebextensions/01-test.config",
                ".platform/nginx/conf.d/elasticbeanstalk/timeouts.conf",
                "Dockerfile",
                "app/main.py",
                "pyproject.toml",
                "setup.cfg",
            ],
        )

    def test_zipIsReproducible(self):
        """
        The same files give the same bytes, whatever their times on disk.
        """
        files = {"b.txt": b"second", "a/x.txt": b"first"}
        first = Path(self.mktemp())
        second = Path(self.mktemp())
        writeZip(files, first)
        writeZip(dict(reversed(list(files.items()))), second)
        self.assertEqual(first.read_bytes(), second.read_bytes())

    def test_zipEntries(self):
        """
        Entries are sorted, dated 1980-01-01 and readable by everyone.
        """
        path = Path(self.mktemp())
        writeZip({"b.txt": b"second", "a/x.txt": b"first"}, path)
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
        self.assertEqual([entry.filename for entry in entries], ["a/x.txt", "b.txt"])
        for entry in entries:
            self.assertEqual(entry.date_time, (1980, 1, 1, 0, 0, 0))
            self.assertEqual(entry.external_attr >> 16, 0o100644)
            self.assertEqual(entry.compress_type, zipfile.ZIP_DEFLATED)


class CheckoutBundleTests(SynchronousTestCase):
    """
    The bundle of this checkout, built twice with a real wheel build.
    """

    def setUp(self):
        if not (CHECKOUT / "Dockerfile").is_file():
            raise SkipTest(f"{CHECKOUT} is not a wsecho checkout with a Dockerfile")
        self.first, self.second = checkoutBundles()
        with zipfile.ZipFile(self.first.path) as archive:
            self.contents = {name: archive.read(name) for name in archive.namelist()}

    def test_name(self):
        """
        The zip is named after the version that the wheel build reports.
        """
        self.assertEqual(self.first.version, wsecho.__version__)
        self.assertEqual(self.first.path.name, f"wsecho-{wsecho.__version__}-eb.zip")

    def test_sameBytes(self):
        """
        Two builds of the same checkout give the same bytes.
        """
        self.assertEqual(self.first.path.read_bytes(), self.second.path.read_bytes())

    def test_topLevel(self):
        """
        Dockerfile, .ebextensions and .platform sit at the top of the zip,
        with no parent folder.
        """
        names = set(self.contents)
        self.assertIn("Dockerfile", names)
        self.assertTrue(
            any(
                name.startswith(".ebextensions/") and name.endswith(".config")
                for name in names
            )
        )
        self.assertTrue(
            any(
                name.startswith(".platform/nginx/conf.d/elasticbeanstalk/")
                for name in names
            )
        )
        tops = {name.split("/")[0] for name in names}
        self.assertEqual(
            tops,
            {
                ".dockerignore",
                ".ebextensions",
                ".platform",
                "Dockerfile",
                "README.md",
                "pyproject.toml",
                "setup.cfg",
                "setup.py",
                "twisted",
                "wsecho",
            },
        )

    def test_noClutter(self):
        """
        Caches, tests of tests/ and the eb/ README stay out.
        """
        for name in self.contents:
            self.assertNotIn("__pycache__", name)
            self.assertFalse(name.endswith((".pyc", "dropin.cache")), name)
            self.assertFalse(name.startswith(("tests/", "eb/", ".git/")), name)

    def test_dockerfileSources(self):
        """
        Every COPY source of the bundle's Dockerfile is in the bundle.
        """
        dockerfile = Path(self.mktemp())
        dockerfile.write_bytes(self.contents["Dockerfile"])
        for source, line in copySources(readDockerfile(dockerfile)):
            self.assertTrue(
                any(
                    name == source or name.startswith(source + "/")
                    for name in self.contents
                ),
                f"COPY source {source} (line {line}) is not in the bundle",
            )

    def test_portsAgree(self):
        """
        EXPOSE, SERVER_PORT in the Dockerfile and SERVER_PORT in
        .ebextensions name the same port, read from the zip itself.
        """
        dockerfile = Path(self.mktemp())
        dockerfile.write_bytes(self.contents["Dockerfile"])
        instructions = readDockerfile(dockerfile)
        settings = self.settings()
        port = checkPorts(instructions, settings)
        self.assertEqual(port, exposedPorts(instructions)[0])
        self.assertEqual(imageEnvironment(instructions)["SERVER_PORT"], str(port))
        self.assertEqual(
            settings[("aws:elasticbeanstalk:application:environment", "SERVER_PORT")],
            str(port),
        )

    def settings(self) -> dict[tuple[str, str], str]:
        merged = {}
        for name in sorted(self.contents):
            if name.startswith(".ebextensions/") and name.endswith(".config"):
                merged.update(readOptionSettings(self.contents[name].decode("utf-8")))
        return merged

    def test_loadBalancer(self):
        """
        The environment uses an Application Load Balancer whose idle timeout
        outlasts the server's ping interval, and checks /health.
        """
        settings = self.settings()
        self.assertEqual(
            settings[("aws:elasticbeanstalk:environment", "LoadBalancerType")],
            "application",
        )
        idle = int(settings[("aws:elbv2:loadbalancer", "IdleTimeout")])
        self.assertGreater(idle, 2 * Settings().pingInterval)
        process = "aws:elasticbeanstalk:environment:process:default"
        self.assertEqual(settings[(process, "HealthCheckPath")], "/health")

    def test_drainFits(self):
        """
        The deregistration delay is at least the server's drain timeout, and
        the drain fits in the 10 s docker stop waits before SIGKILL.
        """
        settings = self.settings()
        delay = int(
            settings[
                (
                    "aws:elasticbeanstalk:environment:process:default",
                    "DeregistrationDelay",
                )
            ]
        )
        self.assertGreaterEqual(delay, Settings().drainTimeout)
        self.assertLess(Settings().drainTimeout, 10)

    def test_forwardedForDepth(self):
        """
        The server trusts two X-Forwarded-For entries: the load balancer's
        and nginx's.
        """
        settings = self.settings()
        environment = "aws:elasticbeanstalk:application:environment"
        self.assertEqual(settings[(environment, "WSECHO_TRUST_X_FORWARDED_FOR")], "2")

    def test_capacity(self):
        """
        At least two instances run in two zones, with a scaling trigger and
        rolling deploys.
        """
        settings = self.settings()
        self.assertGreaterEqual(int(settings[("aws:autoscaling:asg", "MinSize")]), 2)
        self.assertGreater(
            int(settings[("aws:autoscaling:asg", "MaxSize")]),
            int(settings[("aws:autoscaling:asg", "MinSize")]),
        )
        self.assertEqual(
            settings[("aws:autoscaling:asg", "Availability Zones")], "Any 2"
        )
        self.assertIn(("aws:autoscaling:trigger", "UpperThreshold"), settings)
        self.assertEqual(
            settings[("aws:elasticbeanstalk:command", "DeploymentPolicy")], "Rolling"
        )
        self.assertEqual(
            settings[("aws:elasticbeanstalk:cloudwatch:logs", "StreamLogs")], "true"
        )

    def test_checkoutSettingsMatchZip(self):
        """
        The zip's settings are those of eb/ in the checkout.
        """
        self.assertEqual(self.settings(), ebextensionsSettings(CHECKOUT / "eb"))


@functools.cache
def checkoutBundles() -> tuple[bundle.Bundle, bundle.Bundle]:
    """
    Build the checkout's bundle twice, once for all the tests that read it.

    The bundles go under trial's working folder, which the next run clears.
    """
    output = Path(tempfile.mkdtemp(prefix="checkout-bundles-", dir=".")).resolve()
    return (
        bundle.makeBundle(CHECKOUT, output / "first"),
        bundle.makeBundle(CHECKOUT, output / "second"),
    )
