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

rclpy's public API does not allow it: every Node builds its own TimeSource in `__init__` and keeps it at
the private `node._time_source`, which alone can detach that node's subscription (`TimeSource.detach_node`)
while its clock stays on sim time; turning `use_sim_time` off would drop the subscription but also take
the clock off sim time and leave the parameter saying false. So this reaches `node._time_source` (rclpy 9),
through public methods only, and checks what it did: an rclpy without that attribute, or whose detach left
the node subscribed to its clock, stops the cell's start with a clear error instead of a silent change.
"""
from __future__ import annotations

from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from rclpy.time_source import TimeSource
from rosgraph_msgs.msg import Clock

from enpire_common.executors import lean_subscription_events

__all__ = ['share_clock_subscriptions']

# What rclpy's TimeSource subscribes with.
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def share_clock_subscriptions(nodes: Sequence[Node]) -> dict[str, Node]:
    """Replace the clock subscriptions of the sim-time `nodes` by one per clock topic, held by the first
    node on it, or by none where one of `nodes` publishes that clock (delivered in the process); returns
    clock topic -> the node whose clocks that topic sets first (empty when no node runs on sim time).
    RuntimeError when this rclpy keeps a node's TimeSource elsewhere (see the module's docstring)."""
    by_topic: dict[str, list[Node]] = {}
    for node in nodes:
        if node.get_parameter('use_sim_time').value is True:
            by_topic.setdefault(_clock_subscription(node).topic_name, []).append(node)
    holders = {}
    for topic, group in by_topic.items():
        clocks = [node.get_clock() for node in group]
        for node in group:
            node._time_source.detach_node()       # its subscription goes; its clock stays on sim time
            if _clock_subscriptions(node):
                raise RuntimeError(f'{_RCLPY}: TimeSource.detach_node() left node {node.get_name()} '
                                   f'subscribed to {topic}')

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


_RCLPY = 'enpire_common.shared_clock (written for rclpy 9) does not fit this rclpy'


def _clock_subscriptions(node: Node) -> list:
    """The node's subscriptions that its own TimeSource made."""
    source = getattr(node, '_time_source', None)
    if not isinstance(source, TimeSource):
        raise RuntimeError(f'{_RCLPY}: node {node.get_name()} keeps no TimeSource at Node._time_source')
    return [sub for sub in node.subscriptions if sub.callback == source.clock_callback]


def _clock_subscription(node: Node):
    subs = _clock_subscriptions(node)
    if len(subs) != 1:
        raise RuntimeError(f'{_RCLPY}: node {node.get_name()} runs on sim time with {len(subs)} clock '
                           'subscriptions of its TimeSource, not one')
    return subs[0]
