"""A team of 8 on 32 cells through the real FleetTrialRunner, fleet client and scheduler, on the fleet
clock; the cells are stood in for by `run_one` (no graph), each trial 30 s of cell time."""
import re
import threading

import pytest
import rclpy

from enpire_agents.experiment import load_experiment
from enpire_agents.team import FleetTrialRunner, Team
from enpire_rollout.trial_outcome import TrialOutcome
from tests.enpire_agents.test_team import ScriptedBackend

CELLS = [f'cell_{i}' for i in range(32)]


@pytest.fixture
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('team_fleet_scale_probe', context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _config(team_size):
    return load_experiment({
        'name': 'fleet_scale', 'task': 'pusht', 'cells': CELLS, 'team': {'size': team_size, 'patience': 2},
        'budgets': {'wall_clock_s': 3600, 'trials': 2000, 'robot_time_s': 1e6},
        'success_bar': {'k': 8, 'pass_at_k': 0.95, 'pass_at_1': 0.5, 'held_out_confirmation': False},
        'improvement': {'seeds': {'start': 0, 'count': 500}, 'trials_per_node': 8, 'max_rounds': 30},
        'evaluation': {'seeds': {'start': 10000, 'count': 100}}})


def _cells(runner, used, lock):
    def run_one(cell, request):
        code = open(request.policy_path).read()
        q = float(re.search(r'QUALITY = ([0-9.]+)', code).group(1))
        u = (request.seed * 0.6180339887) % 1.0
        first = 1 if u < q else 3 if u < q + 0.3 else None
        n = first or request.attempts
        with lock:
            used.add(cell)
        return TrialOutcome(seed=request.seed, cell=cell, accepted=True, attempts=request.attempts,
                            attempts_used=n, attempt_scores=[0.9] * n,
                            attempt_successes=[i + 1 == first for i in range(n)],
                            reset_s=5.0, execute_s=20.0, verify_s=5.0,
                            cell_time_s=30.0, wall_s=0.01)
    runner.client.run_one = run_one


def test_a_team_of_8_uses_all_32_cells_and_its_times_are_on_the_fleet_clock(node, tmp_path):
    runner = FleetTrialRunner(node, CELLS, tmp_path / 'policies', task='pusht', fleet_time=True)
    used, lock = set(), threading.Lock()
    _cells(runner, used, lock)
    team = Team(_config(8), runner, tmp_path / 'team', backends=[ScriptedBackend(0.2) for _ in range(8)],
                clock=runner.clock(), clock_name='fleet', wall_cap_s=120)
    result = team.run()
    assert result.clock == 'fleet' and result.stop_reason.startswith('success bar met')
    assert used == set(CELLS)                       # 8 agents x a share of 4 cells: every cell worked
    evaluated = [n for n in result.nodes if n.status == 'evaluated']
    # trials take 30 s of cell time: every idea ends on a multiple of 30 s, never on this machine's wall
    # time; a first idea's 8 trials run as two chunks of its 4 cells (0-30 s, 30-60 s)
    assert evaluated and all(n.t_end > 0 and abs(n.t_end / 30.0 - round(n.t_end / 30.0)) < 1e-9
                             for n in evaluated)
    assert min(n.t_end for n in evaluated) == 60.0
    assert result.wall_s == pytest.approx(max(n.t_end for n in result.nodes))
    assert result.run_wall_s < 120 and set(result.thinking_wall_s) == {f'agent_{i}' for i in range(8)}
    util = result.utilization
    assert util is not None and len(util.cells) == 32 and 0.0 < util.mru <= 1.0
    # on the fleet clock: each cell's trials' cell time over the team's elapsed time
    assert util.cells[0].wall_s == pytest.approx(result.wall_s)
    assert util.cells[0].execute_s == pytest.approx(30.0 * util.cells[0].trials)


def test_a_larger_team_reaches_the_bar_sooner_on_the_fleet_clock(node, tmp_path):
    times = {}
    for size in (1, 8):
        cells = CELLS[:size * 4]
        runner = FleetTrialRunner(node, cells, tmp_path / f'p{size}', task='pusht', fleet_time=True)
        _cells(runner, set(), threading.Lock())
        config = _config(size).model_copy(update={'cells': cells})
        team = Team(config, runner, tmp_path / f'team{size}',
                    backends=[ScriptedBackend(0.2) for _ in range(size)],
                    clock=runner.clock(), clock_name='fleet', wall_cap_s=120)
        result = team.run()
        hits = [n.t_end for n in result.nodes if n.status == 'evaluated' and n.pass_at_k >= 0.95
                and n.pass_at_1 >= 0.5]
        times[size] = min(hits)
    assert times[8] <= times[1]
