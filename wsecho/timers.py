"""
Timers for Autobahn's per-connection timeouts.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class SafeCall:
    """
    A delayed call whose C{cancel} does nothing once it has run, as Autobahn
    expects of its timers.
    """

    def __init__(self, call: IDelayedCall) -> None:
        self.call = call

    def cancel(self) -> None:
        if self.call.active():
            self.call.cancel()


class ReactorTimer:
    """
    The timer Autobahn schedules its handshake, ping and close timeouts
    with, built on the reactor's C{callLater}.

    Autobahn's default, txaio's batched timer (txaio 26.6), truncates every
    due time to a whole second: a 0.5 s ping timeout fires at once, and a
    10 s one up to a second early.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def call_later(
        self,
        delay: float,
        function: Callable[..., object],
        *args: object,
        **kwargs: object,
    ) -> SafeCall:
        return SafeCall(self.clock.callLater(delay, function, *args, **kwargs))
