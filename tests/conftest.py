"""Test-wide setup: loopback-only DDS, a ROS domain of this session's own, node subprocess fixtures."""
from __future__ import annotations

import os
from contextlib import ExitStack

import pytest

# Set before anything imports rclpy: discovery stays on loopback, and parallel sessions (or xdist
# workers) get distinct domains so their graphs never see each other.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.pop('ROS_LOCALHOST_ONLY', None)
_worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
_worker_index = int(''.join(c for c in _worker if c.isdigit()) or 0)
# Several checkouts testing on one machine at once can each be given a band of domains of their own.
_domain_base = int(os.environ.get('ENPIRE_TEST_DOMAIN_BASE', '1'))
_domain_span = int(os.environ.get('ENPIRE_TEST_DOMAIN_SPAN', '100'))
os.environ['ROS_DOMAIN_ID'] = str(_domain_base + (os.getpid() * 7 + _worker_index) % _domain_span)

from hypothesis import settings  # noqa: E402

from tests.graph_harness import NodeProcesses, RosTestNode  # noqa: E402

# No per-example wall-clock deadline: on a loaded machine one example can take 10x its usual time.
settings.register_profile('enpire', deadline=None)
settings.load_profile('enpire')


@pytest.fixture
def node_processes(tmp_path):
    """Start nodes as real subprocesses; all of them (and their children) are killed at teardown."""
    procs = NodeProcesses(log_dir=tmp_path / 'node_logs')
    yield procs
    procs.stop_all()


@pytest.fixture
def ros_node():
    """An rclpy node in the test process, spun by a background executor."""
    node = RosTestNode('enpire_test_client')
    yield node
    node.close()


@pytest.fixture
def sim_cells(tmp_path):
    """Start simulated cells from the bringup file (sim_cells) under the supervisor, as the demo does:
    `sim_cells(['cell_0'], bag_dir=lambda cell: path, pacing='as_fast')` returns once every node is ready
    (managed nodes active); all of them are stopped at teardown."""
    from enpire_common.cells import simulated_cells

    with ExitStack() as stack:
        def start(cells, *, bag_dir, pacing='as_fast', ready_timeout_s=150.0):
            running = stack.enter_context(simulated_cells(
                cells, tmp_path / 'node_logs', bag_dir=bag_dir, ready_timeout_s=ready_timeout_s,
                parameters={'sim': {'pacing': pacing}, 'safety': {'pacing': pacing}}))
            assert running.wait_ready(ready_timeout_s), running.problems()
            trial_servers_take_goals(cells, ready_timeout_s)
            return running
        yield start


def trial_servers_take_goals(cells, timeout: float) -> None:
    """Ready on the graph is not yet taking goals: a fresh trial server first checks its recorder for a bag
    of its previous life. Returns once each cell's run_trial has refused an invalid goal with its reason."""
    from enpire_common import names
    from enpire_common.action_client import ActionClient

    from enpire_interfaces.action import RunTrial

    probe = RosTestNode('enpire_test_cells_probe')
    try:
        for cell in cells:
            client = ActionClient(probe.node, RunTrial, names.cell_name(cell, names.RUN_TRIAL))
            assert client.wait_for_server(timeout_sec=timeout), f'{cell}: no run_trial server'
            probe.wait_taking_goals(client, RunTrial.Goal(task='pusht', attempts=0), timeout)
            client.destroy()
    finally:
        probe.close()
