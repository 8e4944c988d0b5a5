"""On-demand subscriptions: messages wait in the reader until taken, the parent's executor never
dispatches them, and topic names resolve as the parent node's (namespace, remapping)."""
from __future__ import annotations

import threading
import time

import pytest
import rclpy
import rclpy.executors
from enpire_common.on_demand import OnDemandSubscriptions
from rclpy.qos import QoSProfile
from std_msgs.msg import String

from tests.graph_harness import RosTestNode

pytestmark = pytest.mark.graph


def _take_within(sensors, key, timeout=30.0) -> list:
    """Take until something has arrived (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while not (got := sensors.take(key)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return got


def test_messages_are_taken_in_order_when_asked_and_only_then():
    context = rclpy.Context()
    rclpy.init(context=context, args=['--ros-args', '-r', 'chatter:=remapped_chatter'])
    parent = rclpy.create_node('parent', namespace='/cell_7', context=context)
    publisher_side = RosTestNode('on_demand_publisher')
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(parent)          # the parent is spun as a node is: the taken messages must wait
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        sensors = OnDemandSubscriptions(parent)
        resolved = sensors.add('chatter', String, 'chatter', QoSProfile(depth=5), raw=False)
        assert resolved == '/cell_7/remapped_chatter'
        assert sensors.node.get_name() == 'parent_on_demand'
        assert sensors.take('chatter') == []
        pub = publisher_side.node.create_publisher(String, '/cell_7/remapped_chatter', 5)
        publisher_side.wait_for(lambda: pub.get_subscription_count() > 0, what='match')
        for i in range(8):
            pub.publish(String(data=f'm{i}'))
        time.sleep(0.5)
        # depth 5: the newest five, oldest first; a second take finds nothing new
        assert [m.data for m in sensors.take('chatter')] == ['m3', 'm4', 'm5', 'm6', 'm7']
        assert sensors.take('chatter') == []
        pub.publish(String(data='late'))
        assert [m.data for m in _take_within(sensors, 'chatter')] == ['late']
        # raw=True hands over the CDR bytes
        sensors.add('chatter_raw', String, 'chatter', QoSProfile(depth=5), raw=True)
        publisher_side.wait_for(lambda: pub.get_subscription_count() > 1, what='match of the raw reader')
        pub.publish(String(data='bytes'))
        got = _take_within(sensors, 'chatter_raw')
        assert len(got) == 1 and isinstance(got[0], bytes) and b'bytes' in got[0]
        sensors.destroy()
    finally:
        executor.shutdown()
        publisher_side.close()
        parent.destroy_node()
        rclpy.shutdown(context=context)


def test_lazy_subscriptions_exist_only_while_open_and_open_waits_for_the_match():
    """A lazy key is no subscription until `open`; `open` returns once it matched the topic's publisher
    (a message published right after reaches it); `close_later` unsubscribes unless opened again."""
    context = rclpy.Context()
    rclpy.init(context=context)
    parent = rclpy.create_node('lazy_parent', namespace='/cell_8', context=context)
    publisher_side = RosTestNode('lazy_publisher')
    try:
        sensors = OnDemandSubscriptions(parent)
        sensors.add('frames', String, 'frames', QoSProfile(depth=5), lazy=True)
        sensors.add('unpublished', String, 'nobody_publishes', QoSProfile(depth=5), lazy=True)
        pub = publisher_side.node.create_publisher(String, '/cell_8/frames', 5)
        publisher_side.wait_for(lambda: sensors.node.count_publishers('/cell_8/frames') > 0, what='discovery')
        assert pub.get_subscription_count() == 0 and sensors.take('frames') == []
        t0 = time.monotonic()
        assert sensors.open(timeout_s=30.0) == {'frames'}       # the unpublished topic is not waited for
        assert time.monotonic() - t0 < 30.0
        publisher_side.wait_for(lambda: pub.get_subscription_count() == 1, what='the publisher side matched')
        pub.publish(String(data='first'))
        assert [m.data for m in _take_within(sensors, 'frames')] == ['first']
        sensors.close_later(0.3)
        sensors.open(['frames'], timeout_s=30.0)              # opened again: the close is called off
        time.sleep(0.6)
        assert sensors.matched('frames') and pub.get_subscription_count() == 1
        sensors.close_later(0.2)
        publisher_side.wait_for(lambda: pub.get_subscription_count() == 0, what='unsubscribed')
        assert not sensors.matched('frames') and sensors.take('frames') == []
        sensors.destroy()
    finally:
        publisher_side.close()
        parent.destroy_node()
        rclpy.shutdown(context=context)
