"""One clock subscription per process for the sim-time nodes of a composed cell.

rclpy gives every node with `use_sim_time` its own TimeSource, and each subscribes to the clock topic:
a composed simulated cell of six nodes took every clock message five times, and each take is a wake-up
of the executor (it rebuilds its wait set of every entity of the cell, ~0.4 ms of Python). Here the
nodes whose clock subscriptions name the same topic keep one subscription (without the default QoS-event
handlers) that sets every one of their clocks, as each TimeSource did. `use_sim_time` is then fixed for
the life of the process (a composed cell's nodes are built with it and keep it).

rclpy has no public accessor for a node's TimeSource; this reaches `node._time_source` (rclpy 9).
"""
from __future__ import annotations

from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from rosgraph_msgs.msg import Clock

from enpire_common.executors import lean_subscription_events

__all__ = ['share_clock_subscriptions']

# What rclpy's TimeSource subscribes with.
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def share_clock_subscriptions(nodes: Sequence[Node]) -> dict[str, Node]:
    """Replace the clock subscriptions of the sim-time `nodes` by one per clock topic, held by the first
    node on it; returns clock topic -> that node (empty when no node runs on sim time)."""
    by_topic: dict[str, list[Node]] = {}
    for node in nodes:
        source = getattr(node, '_time_source', None)
        sub = getattr(source, '_clock_sub', None)
        if sub is not None:
            by_topic.setdefault(sub.topic_name, []).append(node)
    holders = {}
    for topic, group in by_topic.items():
        clocks = [node.get_clock() for node in group]
        for node in group:
            node._time_source.detach_node()       # its subscription goes; its clock stays on sim time

        def on_clock(msg: Clock, clocks=clocks) -> None:
            now = Time.from_msg(msg.clock)
            for clock in clocks:
                clock.set_ros_time_override(now)
        group[0].create_subscription(Clock, topic, on_clock, CLOCK_QOS,
                                     event_callbacks=lean_subscription_events())
        holders[topic] = group[0]
    return holders
