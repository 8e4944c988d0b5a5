"""A simulated cell of sim_cells.yaml composed as the file says: its nodes come up in ONE process (one
DDS participant) under the cell's namespace, and a trial runs through it; the bringup's processes say so."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from enpire_common import bringup_file

from tests.enpire_bringup.policies import mover_goal

pytestmark = pytest.mark.graph

CELL_NODES = ('sim_cell', 'safety', 'verify', 'reset', 'recorder', 'trial_server')


def participant_ids(pid: int, domain: int) -> set[int]:
    """The DDS participants a process runs, from the unicast ports it binds: RTPS gives participant i of
    domain d the ports 7400 + 250 d + 10 + 2 i (discovery) and + 11 + 2 i (user data)."""
    sockets = set()
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            found = re.fullmatch(r'socket:\[(\d+)\]', os.readlink(fd))
        except OSError:
            continue
        if found:
            sockets.add(found.group(1))
    base = 7400 + 250 * domain
    ids = set()
    for table in ('udp', 'udp6'):
        for line in Path(f'/proc/{pid}/net/{table}').read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(':', 1)[1], 16)
            if fields[9] in sockets and base + 10 <= port < base + 250:
                ids.add((port - base - 10) // 2)
    return ids


def test_sim_cells_compose_each_cell_into_one_process():
    processes = bringup_file.expand(bringup_file.load('sim_cells'), cells=2).processes()
    assert [p.label for p in processes] == ['cell_0', 'cell_1', 'agents']
    cell = processes[0]
    assert cell.composed
    assert [n.name for n in cell.nodes] == ['sim', 'safety', 'verify', 'reset', 'recorder', 'trial_server']
    assert cell.managed == ['/cell_0/safety'] and processes[2].after == ['cell_0', 'cell_1']
    separate = bringup_file.expand(bringup_file.load('sim_cells'), cells=2).processes(compose=False)
    assert len(separate) == 13 and not any(p.composed for p in separate)


def test_up_prints_a_cell_as_one_container_or_with_separate_every_node_alone():
    def printed(*extra):
        out = subprocess.run([sys.executable, '-m', 'enpire_bringup.cli', 'up', 'sim_cells', '--cells', '2',
                              '--skip', 'agents', '--print', *extra],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return {line.split(': ', 1)[0]: line.split(': ', 1)[1] for line in out.stdout.splitlines()}

    composed = printed()
    assert sorted(composed) == ['cell_0', 'cell_1']
    assert ' -m enpire_common.composition ' in composed['cell_0']
    assert composed['cell_0'].count(' -- ') + composed['cell_0'].endswith(' --') == len(CELL_NODES)
    separate = printed('--separate')
    assert len(separate) == 2 * len(CELL_NODES)
    assert ' -m enpire_env.safety_node --ros-args -r __ns:=/cell_1' in separate['cell_1.safety']


def test_a_composed_cell_is_one_process_one_participant_and_runs_a_trial(sim_cells, ros_node, tmp_path):
    from enpire_common import names
    from enpire_common.action_client import ActionClient

    from enpire_interfaces.action import RunTrial

    running = sim_cells(['cell_0'], bag_dir=lambda cell: tmp_path / 'bags' / cell)
    pids = running.supervisor.pids()
    assert list(pids) == ['cell_0']
    pid = pids['cell_0']
    on_graph = set(ros_node.wait_for(
        lambda: (found := set(ros_node.node.get_node_names_and_namespaces())) >= {
            (n, '/cell_0') for n in CELL_NODES} and found, 30, 'the cell nodes on the graph'))
    assert {(n, '/cell_0') for n in CELL_NODES} <= on_graph
    assert len(participant_ids(pid, int(os.environ['ROS_DOMAIN_ID']))) == 1
    assert not Path(f'/proc/{pid}/task/{pid}/children').read_text().split()    # no node in a child

    client = ActionClient(ros_node.node, RunTrial, names.cell_name('cell_0', names.RUN_TRIAL))
    assert client.wait_for_server(timeout_sec=30)
    # a fresh server may lose the first goal (a discovery race): a refused one proves the paths first
    ros_node.wait_taking_goals(client, RunTrial.Goal(task='pusht', attempts=0))
    handle = ros_node.wait_future(client.send_goal_async(mover_goal(tmp_path, seed=5)), 30, 'goal accepted')
    assert handle.accepted
    result = ros_node.wait_future(handle.get_result_async(), 150, 'trial result').result
    log = (tmp_path / 'node_logs' / 'cell_0.log').read_text()[-3000:]
    assert result.failure_reason == '', (result.failure_reason, log)
    assert result.attempts_used == 1 and Path(result.bag_path).is_relative_to(tmp_path / 'bags' / 'cell_0')
    assert running.supervisor.pids() == {'cell_0': pid}                    # the same process throughout
