"""One clock subscription per clock topic for the sim-time nodes of one process (enpire_common.shared_clock):
the graph shows one reader of the cell's clock, and every node's clock reads what the cell publishes."""
from __future__ import annotations

import pytest
import rclpy
import rclpy.executors
from builtin_interfaces.msg import Time
from enpire_common.shared_clock import share_clock_subscriptions
from rosgraph_msgs.msg import Clock

from tests.graph_harness import RosTestNode


def test_sim_time_nodes_of_one_process_share_one_clock_subscription_and_all_follow_it():
    context = rclpy.Context()
    rclpy.init(context=context)
    sim_args = ['--ros-args', '-p', 'use_sim_time:=true', '-r', '/clock:=/cell_5/clock']
    nodes = [rclpy.create_node(name, namespace='/cell_5', context=context, cli_args=sim_args)
             for name in ('a', 'b', 'c')]
    wall = rclpy.create_node('wall_node', namespace='/cell_5', context=context)     # not on sim time
    publisher_side = RosTestNode('shared_clock_publisher')
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    try:
        graph = publisher_side.node
        graph_readers = lambda: graph.count_subscribers('/cell_5/clock')   # noqa: E731
        publisher_side.wait_for(lambda: graph_readers() == 3, what='three clock readers')
        holders = share_clock_subscriptions([*nodes, wall])
        assert list(holders) == ['/cell_5/clock'] and holders['/cell_5/clock'] is nodes[0]
        publisher_side.wait_for(lambda: graph_readers() == 1, what='one clock reader left')
        for node in nodes:
            executor.add_node(node)
        pub = graph.create_publisher(Clock, '/cell_5/clock', 10)
        publisher_side.wait_for(lambda: pub.get_subscription_count() == 1, what='match')

        def all_at(sec):
            pub.publish(Clock(clock=Time(sec=sec)))
            executor.spin_once(timeout_sec=0.05)
            return all(n.get_clock().now().nanoseconds == sec * 1_000_000_000 for n in nodes)
        publisher_side.wait_for(lambda: all_at(1234), what='every node at the published time')
        publisher_side.wait_for(lambda: all_at(1240), what='every node follows the clock')
        assert wall.get_clock().now().nanoseconds > 1_700_000_000 * 10**9      # still wall time
        assert share_clock_subscriptions([wall]) == {}
    finally:
        executor.shutdown()
        publisher_side.close()
        for node in [*nodes, wall]:
            node.destroy_node()
        rclpy.shutdown(context=context)


def test_default_qos_event_handlers_go_and_asked_for_ones_stay():
    from enpire_common.executors import drop_default_event_handlers
    from rclpy.event_handler import PublisherEventCallbacks
    from std_msgs.msg import String

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('lean_cell_node', context=context)
    try:
        matched = []
        asked = node.create_publisher(String, 'asked', 1,
                                      event_callbacks=PublisherEventCallbacks(matched=matched.append))
        plain = node.create_subscription(String, 'plain', lambda _m: None, 1)
        before = len(list(node.waitables))
        assert plain.event_handlers and len(asked.event_handlers) == 3      # 2 defaults + matched
        dropped = drop_default_event_handlers([node])
        # the defaults of the parameter_events publisher, `plain` and `asked` (2 each)
        assert dropped == 6 and len(list(node.waitables)) == before - 6
        assert plain.event_handlers == [] and [h.callback for h in asked.event_handlers] == [matched.append]
        assert node.destroy_subscription(plain) and node.destroy_publisher(asked)   # destroyable as before
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_clock_published_in_the_process_sets_its_sim_time_nodes_directly():
    """The simulator composed with its cell's nodes: each Clock it publishes sets their clocks as it goes
    out (no clock subscription left in the process), and still reaches readers in other processes."""
    context = rclpy.Context()
    rclpy.init(context=context)
    sim_args = ['--ros-args', '-p', 'use_sim_time:=true', '-r', '/clock:=/cell_6/clock']
    nodes = [rclpy.create_node(name, namespace='/cell_6', context=context, cli_args=sim_args)
             for name in ('a', 'b')]
    sim = rclpy.create_node('sim', namespace='/cell_6', context=context)
    clock_pub = sim.create_publisher(Clock, 'clock', 10)
    other_process = RosTestNode('in_process_clock_reader')
    heard = []
    try:
        holders = share_clock_subscriptions([sim, *nodes])
        assert list(holders) == ['/cell_6/clock']
        graph = other_process.node
        graph.create_subscription(Clock, '/cell_6/clock', heard.append, 10)
        other_process.wait_for(lambda: graph.count_subscribers('/cell_6/clock') == 1
                               and clock_pub.get_subscription_count() == 1, what='only the outside reader')
        clock_pub.publish(Clock(clock=Time(sec=4321)))       # no executor spins this process
        assert all(n.get_clock().now().nanoseconds == 4321 * 10**9 for n in nodes)
        assert sim.get_clock().now().nanoseconds > 1_700_000_000 * 10**9      # the publisher keeps wall time
        other_process.wait_for(lambda: heard and heard[-1].clock.sec == 4321, what='the clock on the topic')
    finally:
        other_process.close()
        for node in [*nodes, sim]:
            node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.fixture
def sim_time_nodes():
    context = rclpy.Context()
    rclpy.init(context=context)
    sim_args = ['--ros-args', '-p', 'use_sim_time:=true', '-r', '/clock:=/cell_6/clock']
    nodes = [rclpy.create_node(name, namespace='/cell_6', context=context, cli_args=sim_args)
             for name in ('a', 'b')]
    yield nodes
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


def test_an_rclpy_that_keeps_no_time_source_where_expected_fails_loudly(sim_time_nodes):
    """rclpy has no public way to this (module docstring); another rclpy stops the cell's start."""
    del sim_time_nodes[1]._time_source
    with pytest.raises(RuntimeError, match=r'does not fit this rclpy: node b keeps no TimeSource at '
                                           r'Node._time_source'):
        share_clock_subscriptions(sim_time_nodes)


def test_a_detach_that_leaves_the_clock_subscription_fails_loudly(sim_time_nodes, monkeypatch):
    monkeypatch.setattr(sim_time_nodes[0]._time_source, 'detach_node', lambda: None)
    with pytest.raises(RuntimeError, match=r'detach_node\(\) left node a subscribed to /cell_6/clock'):
        share_clock_subscriptions(sim_time_nodes)
