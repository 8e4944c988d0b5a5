"""`enpire up sim_cells --cells 2` (without agents): two simulated cells with EN and rollout come up, each
composed in one process, a trial runs on each cell, and SIGINT brings everything down cleanly with no
process left (slow: 12 nodes)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.enpire_bringup.policies import mover_goal
from tests.enpire_bringup.procs import new_token, pids_with_token, wait_no_pids

pytestmark = [pytest.mark.graph, pytest.mark.slow]



def test_up_two_sim_cells_runs_a_trial_on_each_and_stops_clean(tmp_path, ros_node):
    from enpire_common import names
    from enpire_common.action_client import ActionClient

    from enpire_interfaces.action import RunTrial

    token = new_token()
    env = {**os.environ, 'ENPIRE_TEST_TOKEN': token, 'ENPIRE_RUN_DIR': str(tmp_path / 'run'),
           'PYTHONUNBUFFERED': '1'}
    out_path = tmp_path / 'up.out'
    with open(out_path, 'w') as out:
        up = subprocess.Popen([sys.executable, '-m', 'enpire_bringup.cli', 'up', 'sim_cells', '--cells', '2',
                               '--skip', 'agents', '--quiet', '--log-dir', str(tmp_path / 'logs')],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while 'all 2 processes ready' not in out_path.read_text():
            assert up.poll() is None, out_path.read_text()[-3000:]
            assert time.monotonic() < deadline, out_path.read_text()[-3000:]
            time.sleep(0.2)

        handles = {}
        for i, cell in enumerate(('cell_0', 'cell_1')):
            client = ActionClient(ros_node.node, RunTrial, names.cell_name(cell, names.RUN_TRIAL))
            assert client.wait_for_server(timeout_sec=30), f'{cell}: run_trial not on the graph'
            ros_node.wait_taking_goals(client, RunTrial.Goal(task='pusht', attempts=0))   # refused: invalid
            handle = ros_node.wait_future(client.send_goal_async(mover_goal(tmp_path, seed=7 + i)), 30,
                                          f'{cell} goal accepted')
            assert handle.accepted
            handles[cell] = handle
        for cell, handle in handles.items():
            result = ros_node.wait_future(handle.get_result_async(), 150, f'{cell} trial result').result
            log = (tmp_path / 'logs' / f'{cell}.log').read_text()[-3000:]
            assert result.failure_reason == '', (cell, result.failure_reason, log)
            assert result.attempts_used == 1 and len(result.attempt_scores) == 1
            assert Path(result.bag_path).is_relative_to(tmp_path / 'run' / 'bags' / cell)

        assert len(pids_with_token(token)) >= 3             # `enpire up` and its 2 cells (and sandboxes)
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0, out_path.read_text()[-3000:]
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    text = out_path.read_text()
    assert '12 nodes in 2 processes' in text
    assert 'shutting down: SIGINT to 2 processes' in text and 'SIGKILL' not in text
    assert wait_no_pids(token) == []
    for cell in ('cell_0', 'cell_1'):
        log = (tmp_path / 'logs' / f'{cell}.log').read_text()
        for node in ('sim_cell', 'safety', 'verify', 'reset', 'recorder', 'trial_server'):
            assert f'[{cell}.{node}]' in log                  # every node's output in its cell's log
