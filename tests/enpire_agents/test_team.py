"""The team loop with a scripted backend and a scripted runner (fast), and once on the local simulator."""
import re
import time

import pytest

from enpire_agents.backends.base import Proposal
from enpire_agents.experiment import load_experiment
from enpire_agents.guard import ProtectedFiles
from enpire_agents.metrics import CellTime
from enpire_agents.team import LocalTrialRunner, Team
from enpire_rollout.trial_outcome import TrialOutcome

POLICY = '''QUALITY = {q}


class Policy:
    def reset(self, context):
        pass

    def act(self, observation):
        return 256.0, 256.0

    def on_attempt_failed(self, report):
        pass
'''


class ScriptedBackend:
    """Raises QUALITY by `step` each round from its best; reuses a peer's better code; one bad proposal."""
    name = 'scripted'

    def __init__(self, step, bad_round=None):
        self.step, self.bad_round, self.requests = step, bad_round, []

    def propose(self, request):
        self.requests.append(request)
        if request.round == self.bad_round:
            return Proposal(hypothesis='peek at the verifier', code='import enpire_env.verification\n' +
                            POLICY.format(q=0), tokens_in=10, tokens_out=5)
        base = request.best_code or POLICY.format(q=0.0)
        parent = request.best.node_id if request.best else None
        q = float(re.search(r'QUALITY = ([0-9.]+)', base).group(1))
        return Proposal(hypothesis=f'raise quality to {q + self.step:.2f}',
                        code=POLICY.format(q=min(1.0, q + self.step)),
                        parent=parent, tokens_in=100, tokens_out=50)


class ScriptedRunner:
    """A rollout succeeds at attempt 1 when hash(seed) < QUALITY, else at attempt 3 when < QUALITY + 0.3."""

    def __init__(self):
        self.calls = []

    def run(self, code, seeds, *, distribution, attempts, steps_per_attempt, label, record=None):
        q = float(re.search(r'QUALITY = ([0-9.]+)', code).group(1))
        self.calls.append((label, list(seeds)))
        out = []
        for s in seeds:
            u = (s * 0.6180339887) % 1.0
            first = 1 if u < q else 3 if u < q + 0.3 else None
            n = first or attempts
            out.append(TrialOutcome(seed=s, attempts=attempts, attempt_scores=[0.9] * n,
                                      attempt_successes=[i + 1 == first for i in range(n)],
                                      attempt_reasons=['angle off'] * n, execute_s=1.0, reset_s=0.1))
        return out

    def cell_times(self):
        return [CellTime(cell='cell_0', wall_s=10.0, execute_s=8.0, reset_s=1.0, idle_s=1.0)]

    def close(self):
        pass


def _config(**over):
    data = {'name': 'team_unit', 'task': 'pusht', 'team': {'size': 2, 'patience': 2},
            'budgets': {'wall_clock_s': 60, 'trials': 400},
            'success_bar': {'k': 8, 'pass_at_k': 0.95, 'pass_at_1': 0.5, 'n_eval': 20,
                            'max_confirmations': 3},
            'improvement': {'seeds': {'start': 0, 'count': 100}, 'trials_per_node': 10, 'max_rounds': 30},
            'evaluation': {'seeds': {'start': 10000, 'count': 20}, 'ood_seeds': {'start': 20000, 'count': 5}}}
    data.update(over)
    return load_experiment(data)


def test_team_reaches_the_bar_reusing_and_pruning(tmp_path):
    runner = ScriptedRunner()
    backends = [ScriptedBackend(0.05, bad_round=2), ScriptedBackend(0.25)]
    lines = []
    team = Team(_config(), runner, tmp_path, backends=backends, progress=lines.append, evaluate_ood=True)
    result = team.run()
    assert result.reached_bar and result.evaluation.meets_bar, lines
    assert result.stop_reason.startswith('success bar')
    held_out = set(range(10000, 10020)) | set(range(20000, 20005))
    improvement_calls = [seeds for label, seeds in runner.calls if not label.startswith('held-out')]
    assert improvement_calls and all(not set(s) & held_out for s in improvement_calls)
    for backend in backends:    # no request ever carried a held-out seed
        assert all('10005' not in r.model_dump_json() for r in backend.requests)
    rejected = [n for n in result.nodes if n.decision == 'rejected']
    assert rejected and rejected[0].pruned.startswith('rejected before any trial')
    assert any(n.reused_from_agent == 'agent_1' for n in result.nodes if n.agent == 'agent_0')
    assert result.time_to_bar_s is not None and result.tokens_to_bar > 0
    ood = result.ood_evaluation
    assert ood.distribution == 'out_of_distribution' and ood.pass_at_k.n == 5
    assert result.utilization.mru == pytest.approx(0.8)
    assert 'agent/agent_0' in result.tree_log and 'Reused-From' in result.tree_log
    assert result.progress[-1].team_success > 0 and result.progress[-1].at_bar
    assert result.evaluation.pass_at_k.seeds == list(range(10000, 10020))


def test_a_confirmation_that_ends_after_the_wall_clock_budget_is_why_the_team_stopped(tmp_path):
    now = [0.0]
    runner = ScriptedRunner()
    plain = runner.run

    def slow_held_out(code, seeds, **kw):   # held-out rollouts take 50 s each on a fake clock
        if kw['label'].startswith('held-out'):
            now[0] += 50.0 * len(seeds)
            time.sleep(0.2)                 # the other agent meanwhile finds the wall clock spent
        return plain(code, seeds, **kw)

    runner.run = slow_held_out
    config = _config(budgets={'wall_clock_s': 60, 'trials': 400, 'evaluation_wall_clock_s': 10_000})
    lines = []
    result = Team(config, runner, tmp_path, backends=[ScriptedBackend(1.0), ScriptedBackend(0.0)],
                  clock=lambda: now[0], progress=lines.append).run()
    assert 'stop: wall-clock budget' in lines, lines
    assert result.reached_bar and result.evaluation.meets_bar
    assert result.stop_reason == 'success bar confirmed on held-out evaluation seeds'


def test_budget_stops_the_team(tmp_path):
    result = Team(_config(budgets={'trials': 25}), ScriptedRunner(), tmp_path,
                  backends=[ScriptedBackend(0.01), ScriptedBackend(0.01)]).run()
    assert not result.reached_bar and result.stop_reason == 'trial budget'
    assert 20 <= result.trials <= 40 and result.evaluation is not None   # the best is still measured held out


def test_changed_protected_file_invalidates_the_run(tmp_path):
    limits = tmp_path / 'limits.yaml'
    limits.write_text('v: 1\n')
    protected = ProtectedFiles([limits])

    class Tamper(ScriptedBackend):
        def propose(self, request):
            limits.write_text('v: 99\n')
            return super().propose(request)

    result = Team(_config(team={'size': 1}), ScriptedRunner(), tmp_path / 'run', backends=[Tamper(0.5)],
                  protected=protected).run()
    assert result.integrity is not None and not result.integrity.valid and not result.reached_bar


def test_local_runner_runs_rollouts_on_the_simulator():
    runner = LocalTrialRunner(perception='noisy_gt', task='pusht')
    outcomes = runner.run(POLICY.format(q=0), [1, 2], distribution='in_distribution', attempts=2,
                          steps_per_attempt=5, label='t')
    assert [o.seed for o in outcomes] == [1, 2] and all(len(o.attempt_scores) == 2 for o in outcomes)
    assert not any(o.succeeded_within(2) for o in outcomes)
    assert runner.cell_times()[0].trials == 2


def test_an_idea_that_fails_its_first_rollouts_stops_costing_robot_time(tmp_path):
    class Hopeless(ScriptedBackend):
        def propose(self, request):
            return Proposal(hypothesis='do nothing', code=POLICY.format(q=0.0), tokens_in=1, tokens_out=1)

    config = _config(team={'size': 1}, improvement={'seeds': {'start': 0, 'count': 100},
                                                    'trials_per_node': 10, 'max_rounds': 2, 'chunk': 2})
    runner = ScriptedRunner()

    def never(code, seeds, **kw):   # every rollout fails
        outs = ScriptedRunner.run(runner, code, seeds, **kw)
        return [o.model_copy(update={'attempt_successes': [False] * len(o.attempt_successes)}) for o in outs]

    runner.run = never
    result = Team(config, runner, tmp_path, backends=[Hopeless(0.0)]).run()
    assert [n.trials for n in result.nodes] == [2, 2]


def test_held_out_evaluation_replaces_trials_the_cell_could_not_start(tmp_path):
    runner = ScriptedRunner()
    plain = runner.run

    def some_resets_fail(code, seeds, **kw):
        outs = plain(code, seeds, **kw)
        failed = {'attempt_scores': [], 'attempt_successes': [], 'attempt_reasons': [],
                  'failure_reason': 'reset failed'}
        return [o.model_copy(update=failed) if o.seed % 3 == 0 else o for o in outs]

    runner.run = some_resets_fail
    config = _config(evaluation={'seeds': {'start': 10000, 'count': 40}}, success_bar={'n_eval': 20})
    team = Team(config, runner, tmp_path, backends=[ScriptedBackend(0.5), ScriptedBackend(0.5)])
    node = team.tree.commit_idea('agent_0', POLICY.format(q=1.0), 'perfect', None, round=1)
    evaluation = team.evaluate(node.node_id, config.evaluation_pool(), 'in_distribution', target=20)
    assert evaluation.pass_at_k.n == 20 and evaluation.not_run >= 6 and evaluation.skipped == 0
    assert not any(s % 3 == 0 for s in evaluation.pass_at_k.seeds)
    assert evaluation.pass_at_k.seeds[-1] > 10019 and evaluation.meets_bar


def test_held_out_rollouts_that_run_out_of_time_count_as_failures(tmp_path):
    runner = ScriptedRunner()
    plain = runner.run

    def some_run_out_of_time(code, seeds, **kw):
        outs = plain(code, seeds, **kw)
        # the trial server's result when the wall-clock budget ends inside attempt 1 (before a verdict)
        timed_out = {'attempt_scores': [], 'attempt_successes': [False], 'attempt_reasons': [],
                     'failure_reason': 'time budget of 30.0 s exhausted'}
        return [o.model_copy(update=timed_out) if o.seed % 5 == 0 else o for o in outs]

    runner.run = some_run_out_of_time
    config = _config(evaluation={'seeds': {'start': 10000, 'count': 40}}, success_bar={'n_eval': 20})
    team = Team(config, runner, tmp_path, backends=[ScriptedBackend(0.5), ScriptedBackend(0.5)])
    node = team.tree.commit_idea('agent_0', POLICY.format(q=1.0), 'perfect', None, round=1)
    evaluation = team.evaluate(node.node_id, config.evaluation_pool(), 'in_distribution', target=20)
    assert evaluation.not_run == 0 and evaluation.pass_at_k.n == 20
    assert evaluation.pass_at_k.seeds == list(range(10000, 10020))
    assert evaluation.pass_at_k.successes == 16 and not evaluation.meets_bar


def test_an_agent_on_the_regimes_backend_chooses_a_regime_per_hypothesis(tmp_path):
    from enpire_agents.backends.base import ImprovementRequest
    from enpire_agents.experiment import AgentSpec
    from enpire_agents.team import make_backend
    chooser = make_backend(AgentSpec(backend='regimes', bag_root=str(tmp_path / 'no_bags')), 0, 7, tmp_path)
    first = chooser.propose(ImprovementRequest(task='pusht', contract='', agent_id='agent_0', round=0))
    # each regime is tried once before any is repeated; with no bags yet BC falls back to tool calling
    assert chooser.choices == ['tool_calling'] and first.regime == 'tool_calling'
    second = chooser.propose(ImprovementRequest(task='pusht', contract='', agent_id='agent_0', round=1))
    assert chooser.choices[1] == 'behaviour_cloning'
    assert second.regime == 'tool_calling'
    assert 'behaviour_cloning' in second.hypothesis.lower().replace(' ', '_')


def test_agents_take_their_share_of_the_cells_and_queued_trials_stop_with_the_team(tmp_path):
    class StoppableRunner(ScriptedRunner):
        def __init__(self):
            super().__init__()
            self.stops = []

        def run(self, code, seeds, *, distribution, attempts, steps_per_attempt, label, stop=None,
                record=None):
            self.stops.append((label, stop))
            return super().run(code, seeds, distribution=distribution, attempts=attempts,
                               steps_per_attempt=steps_per_attempt, label=label)

    runner = StoppableRunner()
    config = _config(cells=[f'cell_{i}' for i in range(8)], team={'size': 4},
                     budgets={'wall_clock_s': 60, 'trials': 60})
    team = Team(config, runner, tmp_path, backends=[ScriptedBackend(0.01) for _ in range(4)])
    team.run()
    improvement = [(label, seeds) for label, seeds in runner.calls if not label.startswith('held-out')]
    assert improvement and all(len(seeds) <= 2 for _, seeds in improvement)   # 8 cells / 4 agents
    given = [stop for label, stop in runner.stops if not label.startswith('held-out')]
    assert given and all(callable(stop) for stop in given) and all(stop() for stop in given)
    assert all(stop is None for label, stop in runner.stops if label.startswith('held-out'))


def test_an_agent_reads_per_attempt_results_and_key_frames_from_the_bags(tmp_path, record_bag):
    from enpire_agents.backends.prompting import build_prompt
    bag, _ = record_bag(tmp_path / 'bags', 'trial_0', [10, 77])

    class SeeingBackend(ScriptedBackend):
        images = True               # like an LLM backend that takes images

    class RecordedRunner(ScriptedRunner):
        def run(self, code, seeds, **kw):
            return [o.model_copy(update={'bag_path': str(bag)}) for o in super().run(code, seeds, **kw)]

    seeds = {'start': 0, 'count': 100}
    config = _config(team={'size': 2}, improvement={'seeds': seeds, 'trials_per_node': 10, 'max_rounds': 3})
    seeing, blind = SeeingBackend(0.1), ScriptedBackend(0.1)
    Team(config, RecordedRunner(), tmp_path / 'run', backends=[seeing, blind]).run()
    later = seeing.requests[1]
    assert later.best is not None and len(later.best.rollouts) == 10
    failed = [r for r in later.best.rollouts if r.first_success is None]
    assert failed and failed[0].attempt_scores == [0.9] * 8 and failed[0].attempt_reasons == ['angle off'] * 8
    assert all(r.bag_path == str(bag) for r in later.best.rollouts)
    assert later.key_frames_png and len(later.key_frames_png) <= 4
    assert all(f.startswith(b'\x89PNG') for f in later.key_frames_png)
    assert not seeing.requests[0].key_frames_png                   # nothing recorded yet
    assert all(not r.key_frames_png for r in blind.requests)       # a text-only backend is not sent images
    prompt = build_prompt(later)
    assert f'seed {failed[0].seed}: attempt scores [0.90 (angle off);' in prompt.user
    assert prompt.images_png == later.key_frames_png


def test_a_regimes_agent_has_its_proposals_tried_not_rejected(tmp_path):
    from enpire_agents.experiment import AgentSpec
    from enpire_agents.team import make_backend

    class AnyCodeRunner(ScriptedRunner):
        def run(self, code, seeds, **kw):
            return super().run('QUALITY = 0.2\n', seeds, **kw)

    seeds = {'start': 0, 'count': 100}
    config = _config(team={'size': 1}, improvement={'seeds': seeds, 'trials_per_node': 4, 'max_rounds': 2})
    backend = make_backend(AgentSpec(backend='regimes', bag_root=str(tmp_path / 'no_bags')), 0, 7, tmp_path)
    result = Team(config, AnyCodeRunner(), tmp_path / 'run', backends=[backend]).run()
    assert len(result.nodes) == 2 and all(n.status == 'evaluated' for n in result.nodes), result.nodes
