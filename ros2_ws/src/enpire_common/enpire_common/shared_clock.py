"""One clock subscription per process for the sim-time nodes of a composed cell.

rclpy gives every node with `use_sim_time` its own TimeSource, and each subscribes to the clock topic:
a composed simulated cell of six nodes took every clock message five times, and each take is a wake-up
of the executor (it rebuilds its wait set of every entity of the cell, ~0.4 ms of Python). Here the
nodes whose clock subscriptions name the same topic keep one subscription (without the default QoS-event
handlers) that sets every one of their clocks, as each TimeSource did. `use_sim_time` is then fixed for
the life of the process (a composed cell's nodes are built with it and keep it).

When the clock's publisher is one of the process's nodes (the simulator of a composed cell), its clock
messages reach the others in the process directly: each publish sets their clocks as it goes out on the
topic (the intra-process delivery rclcpp's composition has and rclpy lacks), so no subscription wakes the
executor once more per tick, and the cell's nodes are at a step's time before its state and frames go out.

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
    node on it, or by none where one of `nodes` publishes that clock (delivered in the process); returns
    clock topic -> the node whose clocks that topic sets first (empty when no node runs on sim time)."""
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

        def set_clocks(stamp, clocks=clocks) -> None:
            now = Time.from_msg(stamp)
            for clock in clocks:
                clock.set_ros_time_override(now)
        publisher = next((pub for node in nodes for pub in node.publishers
                          if pub.topic_name == topic and pub.msg_type is Clock), None)
        if publisher is not None:
            publisher.publish = _publishing_in_process(publisher.publish, set_clocks)
        else:
            group[0].create_subscription(Clock, topic, lambda msg, to=set_clocks: to(msg.clock), CLOCK_QOS,
                                         event_callbacks=lean_subscription_events())
        holders[topic] = group[0]
    return holders


def _publishing_in_process(publish, set_clocks):
    """`publish` that also sets the process's sim-time clocks to each Clock it sends."""
    def publish_and_set(msg) -> None:
        publish(msg)
        if isinstance(msg, Clock):
            set_clocks(msg.clock)
    return publish_and_set
