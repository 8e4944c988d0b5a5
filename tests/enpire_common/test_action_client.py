"""An action client created on a node that an executor is spinning (enpire_common.action_client): the
executor's pass that runs the moment the client joins the node's waitables, before rclpy's __init__ has
finished, builds its wait set without error (rclpy 9's own ActionClient dies there: the AttributeError that
stopped a test's spin thread beside two CPU-bound processes). No test builds rclpy's own half-way: that
client is never destroyed, and the garbage collector's later fini of its handle, after its context shut
down, hung a whole test run in Fast DDS."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import rclpy
import rclpy.action
import rclpy.executors
from enpire_common.action_client import ActionClient

from enpire_interfaces.action import RunTrial


@pytest.fixture
def node_with_a_pass_on_join():
    """A node whose executor runs one pass right after anything joins its waitables (the interleaving a
    spin thread hits by chance)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('action_client_join', context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    add_waitable = node.add_waitable

    def add_then_pass(waitable):
        add_waitable(waitable)
        executor.spin_once(timeout_sec=0)
    node.add_waitable = add_then_pass
    try:
        yield node
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_client_joins_a_spinning_node_whole(node_with_a_pass_on_join):
    client = ActionClient(node_with_a_pass_on_join, RunTrial, 'run_trial')
    assert client in list(node_with_a_pass_on_join.waitables)
    assert not client.server_is_ready()          # usable as rclpy's: no server on this graph
    client.destroy()


def test_no_module_creates_rclpy_own_action_client():
    from tests.foundation.import_graph import ROOT

    stock = re.compile(r'from rclpy\.action import [^\n]*\bActionClient\b(?! as _)'
                       r'|rclpy\.action\.ActionClient\(')
    users = [str(path.relative_to(ROOT)) for folder in ('ros2_ws/src', 'tests', 'bench')
             for path in (ROOT / folder).rglob('*.py')
             if path.name != Path(__file__).name and stock.search(path.read_text())]
    assert users == [], f'use enpire_common.action_client.ActionClient in {users}'
