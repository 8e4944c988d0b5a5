"""call_resending against a client whose first copies are lost: the first answer wins, the rest are
dropped from the client's table, resending stops once answered, cancelled or past its time."""
from __future__ import annotations

import threading
import time

from enpire_common.service_call import call_resending
from rclpy.task import Future


class LossyClient:
    """A client's call_async / remove_pending_request; copies are answered only when the test says."""

    def __init__(self):
        self.sent: list[tuple[object, Future]] = []
        self.removed: list[Future] = []
        self.lock = threading.Lock()

    def call_async(self, request):
        future = Future()
        with self.lock:
            self.sent.append((request, future))
        return future

    def remove_pending_request(self, future):
        self.removed.append(future)

    def copies(self) -> int:
        with self.lock:
            return len(self.sent)


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.005)


def test_unanswered_copies_are_sent_again_and_the_first_answer_wins():
    client = LossyClient()
    answer = call_resending(client, 'start', resend_s=0.05, give_up_s=30.0)
    wait(lambda: client.copies() >= 3)
    assert not answer.done() and all(req == 'start' for req, _ in client.sent)
    client.sent[1][1].set_result('second')
    client.sent[2][1].set_result('third')
    assert answer.done() and answer.result() == 'second'
    sent = client.copies()
    time.sleep(0.3)
    assert client.copies() == sent                            # answered: no more copies
    unanswered = [f for _, f in client.sent if not f.done()]
    assert unanswered and all(f in client.removed for f in unanswered)


def test_a_cancelled_call_stops_sending():
    client = LossyClient()
    answer = call_resending(client, 'x', resend_s=0.05, give_up_s=30.0)
    wait(lambda: client.copies() >= 2)
    answer.cancel()
    sent = client.copies()
    time.sleep(0.3)
    assert client.copies() == sent and answer.cancelled()


def test_no_copy_after_the_give_up_time_but_a_late_answer_still_counts():
    client = LossyClient()
    answer = call_resending(client, 'x', resend_s=0.05, give_up_s=0.2)
    time.sleep(0.6)
    assert 2 <= client.copies() <= 5
    client.sent[0][1].set_result('late')
    assert answer.result() == 'late'
