"""SubmitOnceExecutor: a ready callback waiting for a busy worker is handed to the pool once, not per pass."""
import threading
import time

import rclpy
from enpire_common.executors import SubmitOnceExecutor
from rclpy.callback_groups import ReentrantCallbackGroup


def test_a_queued_callback_is_submitted_once_and_still_runs():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('submit_once_probe', context=context)
    group = ReentrantCallbackGroup()
    ran = {'slow': 0, 'fast': 0}
    release = threading.Event()

    def slow():                       # holds the only worker
        ran['slow'] += 1
        release.wait(2.0)

    def fast():
        ran['fast'] += 1

    slow_timer = node.create_timer(0.01, slow, callback_group=group)
    node.create_timer(0.05, fast, callback_group=group)
    executor = SubmitOnceExecutor(num_threads=2, context=context)
    executor._executor._max_workers = 1          # one worker: the fast timer's task must queue behind
    executor.add_node(node)
    submits = []
    original_submit = executor._executor.submit
    executor._executor.submit = lambda fn, *a, **k: (submits.append(fn), original_submit(fn, *a, **k))[1]
    try:
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        slow_timer.cancel()
        release.set()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and ran['fast'] == 0:
            executor.spin_once(timeout_sec=0.05)
    finally:
        release.set()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert ran['fast'] >= 1, 'the queued callback never ran'
    # one submission per task: a handful of timer firings, never one per pass of the wait loop
    assert len(submits) <= 3 * (ran['slow'] + ran['fast']) + 4, (len(submits), ran)
    assert len(executor._futures) <= 4
