"""A MultiThreadedExecutor that hands each ready callback to the thread pool once.

rclpy's MultiThreadedExecutor yields every task that is pending and not yet executing on each pass of
its wait loop. A task handed to the pool but not yet picked up by a worker (the common case on a busy
2-core machine, where the spin thread holds the GIL) is therefore submitted again and again: the spin
thread loops without waiting, its `_futures` list fills with thousands of copies of the same few
tasks, and every callback of the node slows down the longer it runs (a trial server went from 3 s to
30 s per rollout). Here a submitted task is marked as executing until a worker starts it, so it is
yielded once and the spin thread goes back to waiting on the graph.
"""
from __future__ import annotations

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)

__all__ = ['SubmitOnceExecutor', 'lean_publisher_events', 'lean_subscription_events']


class SubmitOnceExecutor(MultiThreadedExecutor):
    """Drop-in MultiThreadedExecutor; a ready task is submitted to the pool exactly once."""

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        # Claimed: not yielded again while it waits for a worker. The worker clears the flag and runs
        # the task; a task that yields (a coroutine awaiting a future) is pending again and can be
        # yielded by a later pass as usual.
        handler._executing = True

        def run(task=handler):
            task._executing = False
            task()

        self._executor.submit(run)
        if handler not in self._futures:
            self._futures.append(handler)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise any exceptions from the callback here, as rclpy does


def lean_subscription_events() -> SubscriptionEventCallbacks:
    """No default QoS-event handlers on a high-rate subscription.

    rclpy adds incompatible-QoS and incompatible-type handlers to every subscription and publisher by
    default; each is a waitable that the executor re-enters on every wake-up, which dominates the
    per-message cost of a node with a dozen camera and state topics. The graph tests check the wiring.
    """
    return SubscriptionEventCallbacks(use_default_callbacks=False)


def lean_publisher_events() -> PublisherEventCallbacks:
    """No default QoS-event handlers on a publisher (see `lean_subscription_events`)."""
    return PublisherEventCallbacks(use_default_callbacks=False)
