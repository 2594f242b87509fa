"""
The C{twistd wsecho} command line: its options and the service they build.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from twisted.application.service import IService
from twisted.python import usage

from wsecho.server import buildServer
from wsecho.settings import OPTIONS, OptionSpec, Settings


def describe(spec: OptionSpec) -> str:
    """
    Build the help text of an option, naming its default and variable.
    """
    return f"{spec.help} [default: {spec.default!r}; environment: ${spec.variable}]"


class Options(usage.Options):
    """
    Options of C{twistd wsecho}. Each option falls back to its environment
    variable, then to its default.

    @ivar environ: The environment the fallbacks are read from.
    @ivar settings: The parsed L{Settings}, once parsing succeeded.
    """

    optParameters = [[spec.name, spec.short, None, describe(spec)] for spec in OPTIONS]

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.environ = os.environ if environ is None else environ
        self.settings = Settings()

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse the command line, exiting with one line on a bad value.

        twistd prints its whole usage text before a L{usage.UsageError}; a
        bad value of wsecho is reported in a single line instead.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            sys.stderr.write(f"twistd wsecho: {error}\n")
            raise SystemExit(2) from None

    def postOptions(self) -> None:
        parsed = {spec.attribute: self.resolve(spec) for spec in OPTIONS}
        self.settings = Settings(**parsed)
        for spec in OPTIONS:
            self[spec.name] = parsed[spec.attribute]

    def resolve(self, spec: OptionSpec) -> object:
        """
        Parse an option from the command line, else from its environment
        variable when that is set and not blank (set at all, for an option
        whose empty value means something), else from its default.
        """
        if self[spec.name] is not None:
            return spec.parse(self[spec.name], f"--{spec.name}")
        fromEnvironment = self.environ.get(spec.variable)
        if fromEnvironment is not None and (
            fromEnvironment.strip() or spec.emptyIsValue
        ):
            return spec.parse(
                fromEnvironment, f"the {spec.variable} environment variable"
            )
        return spec.parse(spec.default, "the default")


def makeService(options: Options) -> IService:
    """
    Bind the listening socket and build the echo service.

    @raise SystemExit: The port cannot be bound; the message gives the reason.
    """
    return buildServer(options.settings)
