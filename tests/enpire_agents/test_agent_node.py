"""A small team through the loop on the simulated cell, over the real ROS graph (FleetTrialRunner)."""
import json
import os
import time
from pathlib import Path

import pytest

from enpire_agents import bag_evidence, report
from enpire_agents.experiment import load_experiment
from enpire_agents.team import FleetTrialRunner, Team
from tests.enpire_agents.test_team import ScriptedBackend

pytestmark = [pytest.mark.graph, pytest.mark.slow]
PACING = os.environ.get('ENPIRE_TEST_PACING', 'as_fast')


def _tiny(tmp_path, **over):
    data = {'name': 'graph_team', 'task': 'pusht', 'cells': ['cell_0'], 'team': {'size': 1}, 'pacing': PACING,
            'budgets': {'wall_clock_s': 120, 'trials': 10},   # stops the team; generous for a loaded CI
            'success_bar': {'k': 2, 'pass_at_k': 0.99, 'n_eval': 1, 'max_confirmations': 1},
            'attempts': 2, 'steps_per_attempt': 15,
            'improvement': {'seeds': {'start': 0, 'count': 10}, 'trials_per_node': 1, 'max_rounds': 2},
            'evaluation': {'seeds': {'start': 900000, 'count': 1}}}
    data.update(over)
    return load_experiment(data)


def _start_cell(sim_cells, tmp_path, pacing):
    sim_cells(['cell_0'], bag_dir=lambda cell: tmp_path / 'bags', pacing=pacing)


def test_team_runs_through_run_trial_on_the_simulated_cell(sim_cells, ros_node, tmp_path):
    config = _tiny(tmp_path)
    _start_cell(sim_cells, tmp_path, config.pacing)
    runner = FleetTrialRunner(ros_node.node, config.cells, tmp_path / 'policies', task=config.task,
                              record=True)
    from enpire_agents.agent_node import wait_for_cells
    assert wait_for_cells(ros_node.node, config.cells, timeout_s=30) == []
    lines = []
    team = Team(config, runner, tmp_path / 'run', backends=[ScriptedBackend(0.1)], progress=lines.append)
    result = team.run()
    assert result.nodes, lines
    assert all(n.trials == 1 for n in result.nodes if n.status == 'evaluated'), lines
    assert result.trials >= 1 and result.utilization.cells[0].trials >= 1
    assert result.utilization.cells[0].execute_s > 0
    assert result.evaluation is not None and result.evaluation.pass_at_k.seeds == [900000]
    assert 'agent/agent_0' in result.tree_log
    rollouts = [r for n in team.tree.nodes() if n.result for r in n.result.rollouts]
    assert rollouts and all(r.attempt_scores and r.attempt_reasons for r in rollouts)
    for rollout in rollouts:     # each recorded where the cell keeps its bags, with a top-camera key frame
        assert Path(rollout.bag_path).parent == tmp_path / 'bags', rollout.bag_path
        assert bag_evidence.last_frame_png(rollout.bag_path).startswith(b'\x89PNG')
    paths = report.write(result, tmp_path / 'report')
    assert json.loads(open(paths.summary).read())['improvement_trials'] == result.trials


def test_agent_node_runs_an_experiment_and_publishes_status(sim_cells, node_processes, ros_node, tmp_path):
    pytest.importorskip('enpire_agents.backends.offline')
    config = _tiny(tmp_path)
    _start_cell(sim_cells, tmp_path, config.pacing)
    experiment = tmp_path / 'tiny.yaml'
    import yaml
    experiment.write_text(yaml.safe_dump(config.model_dump(mode='json', exclude_none=True)))
    from std_msgs.msg import String
    lines = []
    ros_node.node.create_subscription(String, '/agents/status', lambda m: lines.append(m.data), 50)
    proc = node_processes.start('agent', ['-m', 'enpire_agents.agent_node', '--ros-args',
                                          '-p', f'experiment:={experiment}',
                                          '-p', f'output_dir:={tmp_path / "out"}'])
    deadline = time.monotonic() + 80
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert proc.poll() is not None, node_processes.log('agent')[-2000:]
    assert any(line.startswith('report:') for line in lines), node_processes.log('agent')[-2000:]
    assert (tmp_path / 'out' / 'graph_team_report.png').exists()
    assert (tmp_path / 'out' / 'hypothesis_tree.git').is_dir()


def test_two_offline_agents_share_two_cells_over_the_graph(sim_cells, ros_node, tmp_path):
    """The team loop with the real offline backend: two agents, two cells, one branch each, the fleet
    spreading their trials over both cells, and ideas that push the T (an idle policy scores ~0.002)."""
    config = _tiny(tmp_path, name='graph_pair', cells=['cell_0', 'cell_1'],
                   team={'size': 2, 'agents': [{'backend': 'offline'}]},
                   budgets={'wall_clock_s': 60, 'trials': 8}, attempts=2, steps_per_attempt=300,
                   trial_time_budget_s=30,
                   improvement={'seeds': {'start': 0, 'count': 40}, 'trials_per_node': 2, 'max_rounds': 3})
    sim_cells(config.cells, bag_dir=lambda cell: tmp_path / 'bags' / cell, pacing=config.pacing)
    from enpire_agents.agent_node import wait_for_cells
    assert wait_for_cells(ros_node.node, config.cells, timeout_s=60) == []
    runner = FleetTrialRunner(ros_node.node, config.cells, tmp_path / 'policies', task=config.task)
    lines = []
    result = Team(config, runner, tmp_path / 'run', progress=lines.append).run()
    assert 'agent/agent_0' in result.tree_log and 'agent/agent_1' in result.tree_log, result.tree_log
    assert {n.agent for n in result.nodes} == {'agent_0', 'agent_1'}, lines
    assert all(cell.trials >= 1 for cell in result.utilization.cells), (result.utilization, lines)
    scored = [n for n in result.nodes if n.status == 'evaluated']
    assert scored and max(n.score for n in scored) > 0.05, lines
