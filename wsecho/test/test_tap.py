"""
Tests for L{wsecho.tap}: where each option comes from and how bad values
are reported.
"""

import io
import sys

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from wsecho.tap import Options


def parse(arguments, environ=None):
    options = Options(environ={} if environ is None else environ)
    usage.Options.parseOptions(options, arguments)
    return options


class PortSourceTests(SynchronousTestCase):
    """
    C{--port} wins over C{SERVER_PORT}, which wins over 8080.
    """

    def test_default(self):
        """
        With neither source, the port is 8080.
        """
        self.assertEqual(parse([])["port"], 8080)

    def test_emptyEnvironment(self):
        """
        An empty or blank C{SERVER_PORT} counts as unset.
        """
        self.assertEqual(parse([], {"SERVER_PORT": ""})["port"], 8080)
        self.assertEqual(parse([], {"SERVER_PORT": "  "})["port"], 8080)

    def test_environment(self):
        """
        C{SERVER_PORT} sets the port when C{--port} is absent.
        """
        self.assertEqual(parse([], {"SERVER_PORT": "9000"})["port"], 9000)

    def test_environmentWhitespace(self):
        """
        Whitespace around the number in C{SERVER_PORT} is ignored.
        """
        self.assertEqual(parse([], {"SERVER_PORT": " 9000\n"})["port"], 9000)

    def test_optionWins(self):
        """
        C{--port} is used even when C{SERVER_PORT} is set.
        """
        options = parse(["--port", "9100"], {"SERVER_PORT": "9000"})
        self.assertEqual(options["port"], 9100)

    def test_optionWinsOverBadEnvironment(self):
        """
        A bad C{SERVER_PORT} is not looked at when C{--port} is given.
        """
        options = parse(["--port", "9100"], {"SERVER_PORT": "abc"})
        self.assertEqual(options["port"], 9100)

    def test_description(self):
        """
        An endpoint description is kept as it is.
        """
        options = parse(["--port", "tcp:9200:interface=127.0.0.1"])
        self.assertEqual(options["port"], "tcp:9200:interface=127.0.0.1")

    def test_descriptionFromEnvironment(self):
        """
        C{SERVER_PORT} may hold an endpoint description too.
        """
        options = parse([], {"SERVER_PORT": "tcp6:9300:interface=\\:\\:1"})
        self.assertEqual(options["port"], "tcp6:9300:interface=\\:\\:1")

    def test_shortOption(self):
        """
        C{-p} is C{--port}.
        """
        self.assertEqual(parse(["-p", "9400"])["port"], 9400)

    def test_portZero(self):
        """
        Port 0 requests any free port from the system.
        """
        self.assertEqual(parse(["--port", "0"])["port"], 0)

    def test_highestPort(self):
        """
        65535 is a valid port.
        """
        self.assertEqual(parse(["--port", "65535"])["port"], 65535)


class BadValueTests(SynchronousTestCase):
    """
    Every bad value is a usage error that names the value and its source.
    """

    def assertUsageError(self, arguments, environ, message):
        error = self.assertRaises(usage.UsageError, parse, arguments, environ)
        self.assertEqual(str(error), message)

    def test_environmentNotANumber(self):
        """
        C{SERVER_PORT=abc} names the variable.
        """
        self.assertUsageError(
            [],
            {"SERVER_PORT": "abc"},
            "invalid port 'abc' from the SERVER_PORT environment variable: "
            "expected a port number or an endpoint description such as tcp:8080",
        )

    def test_environmentOutOfRange(self):
        """
        C{SERVER_PORT=70000} is out of range.
        """
        self.assertUsageError(
            [],
            {"SERVER_PORT": "70000"},
            "invalid port '70000' from the SERVER_PORT environment variable: "
            "a port number must be 0 to 65535",
        )

    def test_optionOutOfRange(self):
        """
        C{--port 65536} names the option.
        """
        self.assertUsageError(
            ["--port", "65536"],
            {},
            "invalid port '65536' from --port: a port number must be 0 to 65535",
        )

    def test_negative(self):
        """
        A negative port is not a number of the accepted form.
        """
        self.assertUsageError(
            ["--port", "-1"],
            {},
            "invalid port '-1' from --port: expected a port number "
            "or an endpoint description such as tcp:8080",
        )

    def test_unknownEndpointType(self):
        """
        C{--port bogus:1} names the unknown endpoint type.
        """
        self.assertUsageError(
            ["--port", "bogus:1"],
            {},
            "invalid endpoint description 'bogus:1' from --port: "
            "Unknown endpoint type: 'bogus'",
        )

    def test_badEndpointArgument(self):
        """
        A description whose port is not a number is rejected.
        """
        error = self.assertRaises(
            usage.UsageError, parse, [], {"SERVER_PORT": "tcp:http"}
        )
        self.assertTrue(
            str(error).startswith(
                "invalid endpoint description 'tcp:http' from the "
                "SERVER_PORT environment variable: "
            ),
            str(error),
        )

    def test_missingCertificate(self):
        """
        An C{ssl:} description naming a missing key file is rejected.
        """
        error = self.assertRaises(
            usage.UsageError,
            parse,
            ["--port", "ssl:8443:privateKey=/nonexistent/key.pem"],
            {},
        )
        self.assertIn(
            "'ssl:8443:privateKey=/nonexistent/key.pem' from --port", str(error)
        )

    def test_prefixNotUTF8(self):
        """
        A prefix with bytes that are not UTF-8 is rejected.
        """
        error = self.assertRaises(
            usage.UsageError, parse, ["--prefix", "caf\udce9"], {}
        )
        self.assertEqual(
            str(error),
            "invalid prefix 'caf\ufffd' from --prefix: it must be valid UTF-8 text",
        )

    def test_pathWithoutSlash(self):
        """
        A path must start with a slash.
        """
        self.assertUsageError(
            ["--path", "ws"],
            {},
            "invalid path 'ws' from --path: it must start with '/', as in /ws",
        )

    def test_reservedPath(self):
        """
        The paths of the health check and the metrics cannot be taken.
        """
        for path, reserved in [("/health", "/health"), ("/metrics/ws", "/metrics")]:
            error = self.assertRaises(usage.UsageError, parse, ["--path", path], {})
            self.assertEqual(
                str(error),
                f"invalid path {path!r} from --path: "
                f"{reserved} is reserved for the server; choose another path",
            )

    def test_pathWithQuery(self):
        """
        A path with a query, a space or an empty segment is rejected.
        """
        for path in ["/ws?x=1", "/w s", "//ws", "/ws#top"]:
            error = self.assertRaises(usage.UsageError, parse, ["--path", path], {})
            self.assertTrue(str(error).startswith(f"invalid path {path!r} from --path"))


class CommandLineTests(SynchronousTestCase):
    """
    Parsing as twistd does prints one line and exits on a bad value.
    """

    def setUp(self):
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_oneLineError(self):
        """
        A bad value writes one line naming it and exits with status 2.
        """
        options = Options(environ={"SERVER_PORT": "abc"})
        exit = self.assertRaises(SystemExit, options.parseOptions, [])
        self.assertEqual(exit.code, 2)
        self.assertEqual(
            self.stderr.getvalue(),
            "twistd wsecho: invalid port 'abc' from the SERVER_PORT environment "
            "variable: expected a port number or an endpoint description such as "
            "tcp:8080\n",
        )

    def test_unknownOption(self):
        """
        An unknown option is reported in one line too.
        """
        options = Options(environ={})
        exit = self.assertRaises(SystemExit, options.parseOptions, ["--nope"])
        self.assertEqual(exit.code, 2)
        self.assertEqual(
            self.stderr.getvalue(), "twistd wsecho: option --nope not recognized\n"
        )

    def test_goodValues(self):
        """
        Good values parse without writing anything.
        """
        options = Options(environ={})
        options.parseOptions(["--port", "9000", "--path", "/echo", "--prefix", ""])
        self.assertEqual(options["port"], 9000)
        self.assertEqual(options["path"], "/echo")
        self.assertEqual(options["prefix"], "")
        self.assertEqual(self.stderr.getvalue(), "")

    def test_helpListsOptions(self):
        """
        The help text lists every option.
        """
        text = str(Options(environ={}))
        for option in ["--port", "--path", "--prefix"]:
            self.assertIn(option, text)
        self.assertIn("SERVER_PORT", text)


class ProductionOptionTests(SynchronousTestCase):
    """
    The production options parse from the command line and the environment.
    """

    def test_defaults(self):
        """
        With nothing set, every setting has its documented default.
        """
        settings = parse([]).settings
        self.assertEqual(settings.pingInterval, 20)
        self.assertEqual(settings.pingTimeout, 10)
        self.assertEqual(settings.handshakeTimeout, 10)
        self.assertEqual(settings.drainTimeout, 5)
        self.assertEqual(settings.maxMessageSize, 16 * 1024 * 1024)
        self.assertEqual(settings.maxConnections, 10000)
        self.assertEqual(settings.allowedOrigins, ["*"])
        self.assertEqual(settings.trustForwardedFor, 0)
        self.assertIs(settings.compression, True)

    def test_commandLine(self):
        """
        Each option sets its field.
        """
        settings = parse(
            [
                "--ping-interval", "0",
                "--ping-timeout", "2.5",
                "--handshake-timeout", "3",
                "--drain-timeout", "0",
                "--max-message-size", "64KiB",
                "--max-connections", "50",
                "--allowed-origins", "https://a.example, https://*.b.example",
                "--trust-x-forwarded-for", "2",
                "--compression", "off",
            ]
        ).settings  # fmt: skip
        self.assertEqual(settings.pingInterval, 0)
        self.assertEqual(settings.pingTimeout, 2.5)
        self.assertEqual(settings.handshakeTimeout, 3)
        self.assertEqual(settings.drainTimeout, 0)
        self.assertEqual(settings.maxMessageSize, 65536)
        self.assertEqual(settings.maxConnections, 50)
        self.assertEqual(
            settings.allowedOrigins, ["https://a.example", "https://*.b.example"]
        )
        self.assertEqual(settings.trustForwardedFor, 2)
        self.assertIs(settings.compression, False)

    def test_environment(self):
        """
        C{WSECHO_*} variables set options that the command line leaves out.
        """
        environ = {
            "WSECHO_TRUST_X_FORWARDED_FOR": "2",
            "WSECHO_PING_INTERVAL": "15",
            "WSECHO_PATH": "/echo",
        }
        settings = parse(["--ping-interval", "5"], environ).settings
        self.assertEqual(settings.trustForwardedFor, 2)
        self.assertEqual(settings.pingInterval, 5)
        self.assertEqual(settings.path, "/echo")

    def test_emptyPrefixFromEnvironment(self):
        """
        An empty C{WSECHO_PREFIX} sets the empty prefix, a pure echo, while
        an empty C{SERVER_PORT} counts as unset.
        """
        settings = parse([], {"WSECHO_PREFIX": "", "SERVER_PORT": ""}).settings
        self.assertEqual(settings.prefix, "")
        self.assertEqual(settings.port, 8080)

    def test_badValues(self):
        """
        Each bad value names itself, its option or variable, and the
        expected form.
        """
        cases = [
            (
                ["--ping-interval", "soon"],
                {},
                "invalid ping interval 'soon' from --ping-interval: "
                "expected a number of seconds, 0 or more",
            ),
            (
                ["--handshake-timeout", "0"],
                {},
                "invalid handshake timeout '0' from --handshake-timeout: "
                "expected a number of seconds above 0",
            ),
            (
                [],
                {"WSECHO_DRAIN_TIMEOUT": "-1"},
                "invalid drain timeout '-1' from the WSECHO_DRAIN_TIMEOUT "
                "environment variable: expected a number of seconds, 0 or more",
            ),
            (
                ["--ping-timeout", "nan"],
                {},
                "invalid ping timeout 'nan' from --ping-timeout: "
                "expected a number of seconds, 0 or more",
            ),
            (
                ["--max-message-size", "16 parsecs"],
                {},
                "invalid message size '16 parsecs' from --max-message-size: "
                "expected a size above 0 in bytes, such as 16777216 or 16MiB",
            ),
            (
                ["--max-connections", "0"],
                {},
                "invalid connection limit '0' from --max-connections: "
                "expected a whole number, 1 or more",
            ),
            (
                ["--trust-x-forwarded-for", "two"],
                {},
                "invalid proxy count 'two' from --trust-x-forwarded-for: "
                "expected a whole number, 0 or more",
            ),
            (
                ["--allowed-origins", "https://a.example,,"],
                {},
                "invalid origin list 'https://a.example,,' from --allowed-origins: "
                "expected comma-separated origins such as https://example.com, or *",
            ),
            (
                ["--compression", "maybe"],
                {},
                "invalid compression 'maybe' from --compression: expected on or off",
            ),
        ]
        for arguments, environ, message in cases:
            error = self.assertRaises(usage.UsageError, parse, arguments, environ)
            self.assertEqual(str(error), message)

    def test_sizeUnits(self):
        """
        Sizes take K, M and G suffixes as powers of 1024.
        """
        for text, size in [
            ("100", 100),
            ("2k", 2048),
            ("1M", 1 << 20),
            ("1GiB", 1 << 30),
        ]:
            settings = parse(["--max-message-size", text]).settings
            self.assertEqual(settings.maxMessageSize, size)

    def test_helpShowsUnits(self):
        """
        The help text gives the unit of every timeout and size.
        """
        text = str(Options(environ={}))
        for option in ["--ping-interval", "--handshake-timeout", "--drain-timeout"]:
            self.assertIn(option, text)
        self.assertIn("Seconds", text)
        self.assertIn("in bytes", text)
        self.assertIn("$WSECHO_PING_INTERVAL", text)


class WorkerOptionTests(SynchronousTestCase):
    """
    C{--workers} takes a count or C{auto}.
    """

    def test_count(self):
        """
        A number sets the worker count.
        """
        self.assertEqual(parse(["--workers", "3"]).settings.workers, 3)

    def test_auto(self):
        """
        C{auto} means one worker per usable CPU core.
        """
        import os

        expected = len(os.sched_getaffinity(0))
        self.assertEqual(parse(["--workers", "auto"]).settings.workers, expected)

    def test_zero(self):
        """
        Zero workers is rejected.
        """
        error = self.assertRaises(usage.UsageError, parse, ["--workers", "0"], {})
        self.assertEqual(
            str(error),
            "invalid worker count '0' from --workers: "
            "expected auto or a whole number, 1 or more",
        )
