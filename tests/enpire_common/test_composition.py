"""The container (enpire_common.composition): its command line, and nodes of different classes in one
process on one executor: on the graph under their namespaces, stopped cleanly by a signal, exit 2 with the
reason when one of them cannot start."""
import signal
import time

import pytest
from enpire_common.composition import (
    ComposedNode,
    composed_argv,
    load_class,
    parse_nodes,
    split_options,
)

from tests.enpire_bringup.procs import new_token, pids_with_token


def test_the_command_line_round_trips_nodes_with_their_own_ros_arguments():
    nodes = [ComposedNode('enpire_sim.sim_cell_node:SimCellNode',
                          ['--ros-args', '-r', '__ns:=/cell_0', '-r', '/clock:=/cell_0/clock',
                           '-p', 'seed:=3']),
             ComposedNode('enpire_env.safety_node:SafetyNode'),
             ComposedNode('enpire_env.verify_node:VerifyNode', ['--ros-args', '-p', 'x:=a:b'])]
    argv = composed_argv(nodes, executor='single', process_ros_args=['--ros-args', '--log-level', 'warn'])
    executor, rest = split_options(argv)
    process_args, parsed = parse_nodes(rest)
    assert executor == 'single'
    assert process_args == ['--ros-args', '--log-level', 'warn']
    assert parsed == nodes


@pytest.mark.parametrize('argv, problem', [
    ([], 'no node to run'),
    (['not_a_plugin'], "got 'not_a_plugin'"),
    (['--ros-args', '-p', 'a:=1'], 'must end with --'),
    (['m:C', '--ros-args', '-p', 'a:=1', '--', '--ros-args', '-p', 'b:=2'], 'a second --ros-args'),
])
def test_a_malformed_command_line_is_refused_with_the_reason(argv, problem):
    with pytest.raises(ValueError, match=problem):
        parse_nodes(argv)


def test_an_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="unknown executor 'fast'"):
        split_options(['--executor', 'fast', 'm:C'])


def test_a_plugin_that_names_no_class_says_what_is_missing():
    assert load_class('enpire_common.lifecycle:ManagedCellNode').__name__ == 'ManagedCellNode'
    with pytest.raises(ValueError, match='has no class Nope'):
        load_class('enpire_common.lifecycle:Nope')
    with pytest.raises(ValueError, match='cannot import enpire_common.nowhere'):
        load_class('enpire_common.nowhere:Node')


def _container(node_processes, name, nodes, env=None):
    return node_processes.start(name, ['-m', 'enpire_common.composition', *composed_argv(nodes)], env=env)


def test_a_node_that_cannot_start_stops_the_container_with_exit_2_and_the_reason(node_processes):
    proc = _container(node_processes, 'bad', [
        ComposedNode('enpire_env.safety_node:SafetyNode', ['--ros-args', '-r', '__ns:=/bad_cell',
                                                           '-p', 'task:=pusht']),
        ComposedNode('enpire_sim.sim_cell_node:SimCellNode',
                     ['--ros-args', '-r', '__ns:=/bad_cell', '-p', 'task:=pusht',
                      '-p', 'initial_seed:=abc'])])
    assert proc.wait(timeout=60) == 2
    log = node_processes.log('bad')
    assert 'cannot start' in log and "'initial_seed'" in log and 'INTEGER' in log


def test_nodes_of_one_container_share_its_process_and_stop_on_sigterm(node_processes, ros_node):
    token = new_token()
    proc = _container(node_processes, 'pair', [
        ComposedNode('enpire_env.safety_node:SafetyNode', ['--ros-args', '-r', '__ns:=/pair_cell',
                                                           '-p', 'task:=pusht']),
        ComposedNode('enpire_env.safety_node:SafetyNode',
                     ['--ros-args', '-r', '__ns:=/pair_cell', '-r', '__node:=safety_b',
                      '-p', 'task:=pusht', '-p', 'autostart:=true'])],
        env={'ENPIRE_TEST_TOKEN': token})
    wanted = {('safety', '/pair_cell'), ('safety_b', '/pair_cell')}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not wanted <= set(ros_node.node.get_node_names_and_namespaces()):
        time.sleep(0.2)
    assert wanted <= set(ros_node.node.get_node_names_and_namespaces())
    assert pids_with_token(token) == [proc.pid]     # both nodes in the one process
    proc.send_signal(signal.SIGTERM)
    assert node_processes.wait_exit('pair', proc) == 0, node_processes.log('pair')
