"""A run's figures from its TeamResult, figures over repeats, MTU, curves and the closing note."""
import math

import numpy as np
import pytest

from enpire_agents.benchmark import aggregate
from enpire_agents.benchmark.aggregate import RunRecord
from enpire_agents.benchmark.matrix import load_matrix
from enpire_agents.experiment import SuccessBar
from enpire_agents.metrics import ProgressPoint
from enpire_agents.team import NodeRecord, Team, TeamResult
from tests.enpire_agents.test_team import ScriptedBackend, ScriptedRunner, _config


def _record(spec, *, tts=None, tokens=1000, wall=100.0, mru=0.5, curve=((0.0, 0.0),), status='done'):
    return RunRecord(spec=spec, status=status, reached_bar=tts is not None, time_to_success_s=tts,
                     tokens_to_success=tokens // 2 if tts is not None else None, tokens=tokens, wall_s=wall,
                     token_throughput=tokens / wall, mru=mru, curve=list(curve))


@pytest.fixture
def specs(write_matrix):
    """team size -> the three repeats' run specs of a paired 1/4/8 matrix."""
    runs = load_matrix(write_matrix()).runs()
    return {n: [r for r in runs if r.team_size == n] for n in (1, 4, 8)}


def _node(t_end, pass_at_k, pass_at_1, status='evaluated'):
    return NodeRecord(node_id=f'n{t_end}', agent='agent_0', round=1, hypothesis='h', t_start=0.0,
                      t_end=t_end, status=status, decision='keep', score=pass_at_k, pass_at_1=pass_at_1,
                      pass_at_k=pass_at_k)


def test_time_and_tokens_to_success_come_from_the_first_idea_meeting_the_bar():
    result = TeamResult(
        experiment='x', team_size=1, backends=['b'], cells=['cell_0'], started_unix=0.0, wall_s=50.0,
        stop_reason='s', reached_bar=False,
        nodes=[_node(10.0, 0.5, 0.5), _node(20.0, 1.0, 0.5), _node(30.0, 1.0, 0.9), _node(25.0, 1.0, 1.0,
                                                                                             'rejected')],
        progress=[ProgressPoint(t_s=0.0, tokens=0), ProgressPoint(t_s=10.0, tokens=100),
                  ProgressPoint(t_s=20.0, tokens=200), ProgressPoint(t_s=30.0, tokens=300)])
    bar = SuccessBar(k=2, pass_at_k=0.95, pass_at_1=0.8)
    assert aggregate.first_at_bar(result, bar) == (30.0, 300)
    assert aggregate.first_at_bar(result, SuccessBar(k=2, pass_at_k=0.95)) == (20.0, 200)
    assert aggregate.first_at_bar(result, SuccessBar(k=2, pass_at_k=0.95, pass_at_1=0.95)) is None


def test_without_held_out_confirmation_the_bar_on_improvement_trials_ends_the_run(tmp_path, specs):
    config = _config(success_bar={'k': 8, 'pass_at_k': 0.95, 'pass_at_1': 0.5, 'n_eval': 20,
                                  'held_out_confirmation': False})
    runner = ScriptedRunner()
    result = Team(config, runner, tmp_path, backends=[ScriptedBackend(0.25), ScriptedBackend(0.25)]).run()
    assert not any(label.startswith('held-out') for label, _ in runner.calls)
    assert result.evaluation is None and not result.reached_bar
    assert result.stop_reason == 'success bar met on improvement trials (held-out confirmation off)'
    record = aggregate.run_record(specs[1][0], result, config.success_bar)
    hit = [n for n in result.nodes if n.pass_at_k >= 0.95 and n.pass_at_1 >= 0.5]
    assert record.reached_bar and record.time_to_success_s == min(n.t_end for n in hit)
    assert record.confirmed_held_out is None and record.tokens_to_success <= record.tokens


def test_mtu_is_team_throughput_over_n_times_the_single_agent_runs(specs):
    records = [_record(s, tokens=1000, wall=100.0) for s in specs[1]]          # 10 tokens/s each
    records += [_record(specs[4][0], tokens=3000, wall=100.0)]                # 30/s for 4 agents: 0.75
    records += [_record(specs[8][0], tokens=1000, wall=50.0, status='failed')]
    out = aggregate.with_mtu(records)
    assert [r.mtu for r in out[:3]] == pytest.approx([1.0, 1.0, 1.0])
    assert out[3].mtu == pytest.approx(0.75) and out[4].mtu is None


def test_mtu_is_none_without_single_agent_runs(specs):
    assert aggregate.with_mtu([_record(specs[4][0])])[0].mtu is None


def test_spread_has_a_t_interval_over_repeats():
    s = aggregate.spread([10.0, 20.0, 30.0, None])
    assert (s.n, s.mean, s.median, s.low, s.high) == (3, 20.0, 20.0, 10.0, 30.0)
    half = 4.303 * 10.0 / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == pytest.approx((20.0 - half, 20.0 + half))
    one = aggregate.spread([5.0])
    assert one.ci_low is None and one.fmt() == '5.0'
    assert aggregate.spread([]).fmt() == '-'


def test_median_time_to_success_counts_unsuccessful_runs_as_beyond_the_cap():
    assert aggregate.censored_median([100.0, None, 300.0], cap_s=600) == 300.0
    assert aggregate.censored_median([100.0, None, None], cap_s=600) is None
    assert aggregate.censored_median([100.0, 200.0], cap_s=600) == 150.0


def test_step_curves_resample_on_a_common_grid_and_hold_their_last_value():
    grid = np.array([0.0, 5.0, 10.0, 15.0, 100.0])
    curve = [(0.0, 0.0), (10.0, 0.5), (12.0, 1.0)]
    assert aggregate.resample(curve, grid).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    band = aggregate.band_curve([[(0.0, 0.0), (10.0, 1.0)], [(0.0, 0.0), (50.0, 0.5)]], 100.0, points=11)
    i = band.t_s.index(20.0)
    assert (band.mean[i], band.low[i], band.high[i]) == (0.5, 0.0, 1.0)
    assert band.mean[-1] == pytest.approx(0.75)


def test_groups_over_repeats_and_the_closing_note(specs):
    records = [_record(s, tts=t, mru=m)
               for s, t, m in zip(specs[1], (300.0, 400.0, None), (0.5, 0.6, 0.7), strict=True)]
    records += [_record(s, tts=t, tokens=4000) for s, t in zip(specs[4], (100.0, 150.0, 200.0), strict=True)]
    records += [_record(s, tts=t, tokens=8000) for s, t in zip(specs[8], (50.0, 60.0, 70.0), strict=True)]
    groups = aggregate.summarise(aggregate.with_mtu(records))
    one, four, eight = groups
    assert (one.team_size, one.reached.successes, one.reached.n) == (1, 2, 3)
    assert one.time_to_success_median_s == 400.0 and one.time_to_success.mean == 350.0
    assert one.mru.mean == pytest.approx(0.6) and (one.mru.low, one.mru.high) == (0.5, 0.7)
    assert four.mtu.mean == pytest.approx(1.0) and eight.time_to_success_median_s == 60.0
    note = aggregate.closing_note(groups)
    assert 'team 4 on 4 cell(s): time to success median 150 s (3/3 reached)' in note[0]
    assert note[1].endswith('time to success falls as the team grows (1: 400 s, 4: 150 s, 8: 60 s).')
    head = aggregate.headline(groups)
    assert head['speedup_1_to_8'] == pytest.approx(400 / 60, abs=0.01)


def test_trend_says_when_time_does_not_fall(specs):
    records = [_record(specs[1][0], tts=100.0), _record(specs[4][0], tts=None),
               _record(specs[8][0], tts=90.0)]
    assert 'does not fall' in aggregate.trend(aggregate.summarise(records))
    assert 'no trend' in aggregate.trend(aggregate.summarise(records[:1]))
