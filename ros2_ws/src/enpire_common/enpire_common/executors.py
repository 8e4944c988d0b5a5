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

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)
from rclpy.task import Task

__all__ = ['InlineCallbacksExecutor', 'SubmitOnceExecutor', 'WaitingCallbackGroup',
           'drop_default_event_handlers', 'lean_publisher_events', 'lean_subscription_events']


class WaitingCallbackGroup(MutuallyExclusiveCallbackGroup):
    """A mutually exclusive group whose callbacks wait for what the same executor delivers (a verification
    waiting for the frames its fresh camera subscriptions bring): the InlineCallbacksExecutor runs them
    in its pool, not on the spin thread (every other executor as any mutually exclusive group)."""


class SubmitOnceExecutor(MultiThreadedExecutor):
    """Drop-in MultiThreadedExecutor; a ready task is submitted to the pool exactly once."""

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        self._submit(handler)

    def _submit(self, handler) -> None:
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


class InlineCallbacksExecutor(SubmitOnceExecutor):
    """Subscriptions, timers, services, clients and waitables run on the spin thread, one at a time, as on a
    SingleThreadedExecutor; tasks (an action goal's execution, a future's done callbacks) and the callbacks
    of a WaitingCallbackGroup go to the pool.

    A cell's nodes wait inside their action goals (a trial waits for the cell states and the verdicts that
    the same executor delivers; a reset for its placement and verification). On one thread that waits
    forever; here each goal runs in a worker thread while every message, timer and reply is dispatched
    without a thread hand-off (the MultiThreadedExecutor's per-callback cost). Workers start on demand:
    a goal that waits for a reply needs a free one for the reply's done callback, hence a roomy pool."""

    def __init__(self, num_threads: int = 8, **kwargs):
        super().__init__(num_threads=num_threads, **kwargs)

    @staticmethod
    def _in_pool(entity) -> bool:
        """Created by create_task (an action goal, a done callback), or a callback that waits."""
        return entity is None or isinstance(getattr(entity, 'callback_group', None), WaitingCallbackGroup)

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        try:
            handler, entity, _node = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        if self._in_pool(entity):
            self._submit(handler)
            return
        handler()
        exception = handler.exception()
        if exception is not None:
            raise exception

    def _make_handler(self, entity, node, take_from_wait_list) -> Task:
        """rclpy's handler, without its two triggers of the executor's guard condition for a callback run
        on the spin thread.

        rclpy's handler triggers the guard when it has taken the entity's work and again when the callback
        is done, so that a spin thread waiting while a pool thread runs the callback puts the entity back
        into its wait set. A callback run here is done before this thread waits again, and the next wait
        set is built afresh anyway; the triggers only woke that next wait at once, to rebuild the wait set
        of every entity of the cell once more and find nothing to do (a fifth of an idle real-time cell's
        wake-ups). Callbacks handed to the pool keep rclpy's handler."""
        if self._in_pool(entity):
            return super()._make_handler(entity, node, take_from_wait_list)
        entity._executor_event = True      # out of the wait sets until its work is taken, as in rclpy
        is_shutdown, work_tracker = self._is_shutdown, self._work_tracker

        async def handler() -> None:
            group = entity.callback_group
            if is_shutdown or group is not None and not group.beginning_execution(entity):
                entity._executor_event = False
                return
            with work_tracker:
                call_coroutine = take_from_wait_list(entity)
                entity._executor_event = False
                try:
                    if call_coroutine is not None:
                        await call_coroutine()
                finally:
                    if group is not None:
                        group.ending_execution(entity)
        task = Task(handler, executor=self)
        with self._tasks_lock:
            self._tasks.append((task, entity, node))
        return task


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


def drop_default_event_handlers(nodes) -> int:
    """Remove rclpy's default QoS-event handlers (they only log an incompatible QoS or type) from every
    publisher and subscription of `nodes`, those rclpy makes itself (each node's /parameter_events
    publisher) included; handlers a node asked for stay. Each is a waitable that every wake-up of the
    executor adds to its wait set again (see `lean_subscription_events`). Returns how many went."""
    dropped = 0
    for node in nodes:
        for entity in [*node.publishers, *node.subscriptions]:
            keep = []
            for handler in entity.event_handlers:
                if getattr(handler.callback, '__name__', '').startswith('_default_'):
                    node.remove_waitable(handler)
                    handler.destroy()
                    dropped += 1
                else:
                    keep.append(handler)
            entity.event_handlers = keep
    return dropped
