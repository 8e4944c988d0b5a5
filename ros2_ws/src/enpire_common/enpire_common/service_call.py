"""A service request sent again until one copy of it is answered, for requests that are safe to repeat.

DDS hands a request only to the server readers its writer has matched when the request is written, and a
reply only to the client readers the server's writer has matched when the reply is written. Neither is
what `wait_for_service` checks, so the first request to a server that has just (re)started can vanish:
- the client still sees a server that was killed (its endpoints stay on the graph until its lease runs
  out), writes to it, and the restarted server's reader, matched a moment later, never gets the request;
- the server answers before its reply writer has matched the client's reader, and the reply is dropped.
Measured here: a recorder SIGKILLed and restarted beside the same client left 7 of 7 start requests
unanswered after 40 s. Sent again every `resend_s`, the request reaches the server once both sides have
matched; the server must treat a copy as the same request (the recorder answers a second start of the
trial whose bag is open with that bag).
"""
from __future__ import annotations

import threading
import time

from rclpy.client import Client
from rclpy.task import Future

__all__ = ['call_resending']


def call_resending(client: Client, request, *, resend_s: float = 5.0, give_up_s: float = 60.0) -> Future:
    """A future of the first answer to `request`, sent now and again every `resend_s` (wall s) while no
    answer came, for at most `give_up_s` (wall s; copies already sent may still be answered later).
    Cancelling the future stops the resending; once it is done, the unanswered copies are dropped."""
    return _Resending(client, request, resend_s, give_up_s).answer


class _Resending:
    def __init__(self, client: Client, request, resend_s: float, give_up_s: float):
        self.client, self.request, self.resend_s = client, request, resend_s
        self.give_up_at = time.monotonic() + give_up_s
        self.answer = Future()
        self._lock = threading.Lock()
        self._copies: list[Future] = []
        self._answered_once = False        # two copies answered at once: only the first sets the answer
        self._timer: threading.Timer | None = None
        self.answer.add_done_callback(self._finish)
        self._send()

    def _send(self) -> None:
        with self._lock:
            if self.answer.done():
                return
            copy = self.client.call_async(self.request)
            self._copies.append(copy)
            if time.monotonic() + self.resend_s < self.give_up_at:
                self._timer = threading.Timer(self.resend_s, self._send)
                self._timer.daemon = True
                self._timer.start()
        copy.add_done_callback(self._answered)

    def _answered(self, copy: Future) -> None:
        if copy.cancelled() or copy.exception() is not None:
            return
        with self._lock:
            first, self._answered_once = not self._answered_once and not self.answer.done(), True
        if first:
            self.answer.set_result(copy.result())

    def _finish(self, _answer: Future) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            copies, self._copies = self._copies, []
        for copy in copies:
            if not copy.done():
                self.client.remove_pending_request(copy)
