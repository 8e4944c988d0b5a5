"""rclpy's ActionClient, safe to create on a node that another thread is spinning.

rclpy 9's `ActionClient.__init__` adds the client to its node's waitables (which wakes the node's
executor) before it creates the lock that `get_num_entities` takes. An executor thread that builds its
wait set in between dies with "AttributeError: 'ActionClient' object has no attribute '_lock'", and every
callback of the node stops: a test's client node then waits out its whole budget (found beside two
CPU-bound processes, where the spin thread runs in that gap more often). A client created by a node that
already spins (a team's trial runner, a test's probe) comes from here.
"""
from __future__ import annotations

import threading

from rclpy.action import ActionClient as _RclpyActionClient

__all__ = ['ActionClient']


class ActionClient(_RclpyActionClient):
    """Drop-in rclpy ActionClient whose lock exists before the client joins its node's wait set."""

    def __init__(self, node, action_type, action_name, **kwargs):
        # rclpy replaces it with its own lock later in its __init__; until then no goal exists for a lock
        # to guard, only the executor's wait-set calls need one.
        self._lock = threading.Lock()
        super().__init__(node, action_type, action_name, **kwargs)
