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
        Port 0 asks the system for any free port.
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

    def test_pathWithoutSlash(self):
        """
        A path must start with a slash.
        """
        self.assertUsageError(
            ["--path", "ws"],
            {},
            "invalid path 'ws' from --path: it must start with '/', as in /ws",
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
