"""The agents' tool surface as the permission gate (pure: the in-process simulator, no graph, no MCP)."""
from __future__ import annotations

import json

import pytest

from enpire_agents.cell_tools import CellToolbox, ToolLedger, tool_specs
from enpire_agents.experiment import config_dir, load_experiment
from enpire_agents.hypothesis_tree import HypothesisTree, empty_policy
from enpire_agents.team import LocalTrialRunner
from tests.enpire_agents.backends.fake_llm_server import FORBIDDEN_POLICY
from tests.enpire_agents.backends.test_tool_agents import POLICY


def config(**overrides):
    return load_experiment(config_dir() / 'demo.yaml', **{
        'attempts': 2, 'steps_per_attempt': 20, 'success_bar.k': 2, 'success_bar.n_eval': 2,
        'budgets.trials': 4, **overrides})


@pytest.fixture
def record(tmp_path):
    cfg = config()
    tree = HypothesisTree.create(tmp_path / 'tree.git', cfg.name, empty_policy(cfg.task))

    def toolbox(agent='agent_0', max_calls=10_000):
        ledger = ToolLedger(cfg.budgets, tmp_path / 'tool_calls.jsonl', max_calls=max_calls)
        return CellToolbox(agent, cfg, tree, LocalTrialRunner(perception='noisy_gt', task='pusht'), ledger)
    return toolbox


def test_each_tool_has_its_docstring_and_a_strict_schema(record):
    specs = {s['name']: s for s in tool_specs(record())}
    assert set(specs) == set(CellToolbox.TOOLS)
    assert specs['run_trial']['schema']['required'] == ['node_id']
    assert specs['run_trial']['schema']['additionalProperties'] is False
    assert 'improvement set' in specs['run_trial']['description']


def test_the_gate_refuses_with_reasons_and_logs_every_call(record, tmp_path):
    me, peer = record('agent_0'), record('agent_1')
    mine = me.propose_policy(POLICY, 'push from behind').data['node_id']
    theirs = peer.propose_policy(POLICY, 'the same, on agent_1').data['node_id']
    refusals = {
        'held-out seed': me.run_trial(mine, seeds=[900003]),
        'peer node': me.run_trial(theirs),
        'peer branch': me.propose_policy(POLICY, 'x', branch='agent/agent_1'),
        'peer discard': me.discard(theirs, 'not mine'),
        'static check': me.propose_policy(FORBIDDEN_POLICY, 'shell'),
        'too many attempts': me.run_trial(mine, attempts=3),
        'over budget': me.run_trial(mine, trials=5),
        'unknown parent': me.propose_policy(POLICY, 'x', parent='0123456789'),
        'malformed': me.call('run_trial', '{"node_id": '),
        'reset without a cell': me.reset_cell(seed=1),
    }
    assert not any(r.ok for r in refusals.values())
    text = {k: r.text for k, r in refusals.items()}
    assert 'not improvement seeds' in text['held-out seed'] and 'held-out' not in text['held-out seed']
    assert "on agent_1's branch, not yours" in text['peer node'] and 'parent=' in text['peer node']
    assert "another agent's branch" in text['peer branch'] and "agent_1's branch" in text['peer discard']
    assert "import of 'os'" in text['static check']
    assert 'attempts must be 1..2' in text['too many attempts']
    assert "5 trial(s) asked, 4 left of the experiment's 4" in text['over budget']
    assert 'not a node' in text['unknown parent'] and 'not valid JSON' in text['malformed']
    assert 'not reachable' in text['reset without a cell']
    reused = me.propose_policy(POLICY, 'reuse the peer', parent=theirs[:9])
    assert reused.ok and reused.data['reused_from'] == theirs
    log = [json.loads(line) for line in (tmp_path / 'tool_calls.jsonl').read_text().splitlines()]
    assert len(log) == 13 and [e['agent'] for e in log[:2]] == ['agent_0', 'agent_1']
    assert sum(not e['ok'] for e in log) == 10 and all(e['reason'] for e in log if not e['ok'])
    assert me.hypotheses.node(mine).agent == 'agent_0' and len(me.hypotheses.nodes()) == 3


def test_results_accumulate_on_the_node_and_short_rollouts_do_not_count(record):
    tools = record()
    node = tools.propose_policy(POLICY, 'behind').data['node_id']
    first = tools.run_trial(node, trials=1)
    assert first.ok and first.data['node']['trials'] == 1 and first.data['rollouts'][0]['attempt_scores']
    short = tools.run_trial(node, trials=1, attempts=1)          # pass@2 cannot be read from 1 attempt
    assert short.ok and short.data['node']['trials'] == 1
    again = tools.run_trial(node, seeds=[5])
    assert again.data['node']['trials'] == 2 and tools.hypotheses.node(node).result.seeds[-1] == 5
    assert tools.budget().data['left']['trials'] == 1
    assert tools.list_trials().data['count'] == 3 and tools.list_trials(agent='agent_1').data['count'] == 0
    detail = tools.get_trial(first.data['rollouts'][0]['trial_id'])
    assert detail.ok and detail.data['attempts'] and 'not recorded' in detail.data['safety_events']


def test_a_restarted_server_continues_the_record_and_its_budgets(record):
    tools = record(max_calls=8)
    node = tools.propose_policy(POLICY, 'behind').data['node_id']
    trial = tools.run_trial(node, trials=2).data['rollouts'][0]['trial_id']
    elapsed = tools.ledger.elapsed()
    again = record(max_calls=8)                       # a new process on the same record
    assert again.ledger.spent().trials == 2 and again.ledger.elapsed() >= elapsed
    assert again.budget().data['left']['tool_calls'] == 6       # before this call: 2 of 8 used
    assert again.get_trial(trial).ok
    assert again.run_trial(node, trials=1).data['node']['trials'] == 3    # its earlier rollouts count
    assert again.tree().ok and again.budget().ok and again.tree().ok
    refused = again.tree()
    assert not refused.ok and 'all 8 tool calls' in refused.text


def test_malformed_tool_arguments_are_refused_with_short_reasons(record):
    me = record('agent_0')
    mine = me.propose_policy(POLICY, 'push from behind').data['node_id']
    long = 'x' * 10_000
    run = [{'trials': 0}, {'trials': -3}, {'seeds': []}, {'attempts': 0}, {'attempts': -1},
           {'trials': 10**12}, {'trials': float('nan')}, {'seeds': [-1]}, {'seeds': [2**70]}, {'bogus': 1}]
    calls = [('run_trial', {'node_id': mine, **kw}) for kw in run] + [
        ('run_trial', {'node_id': long}), ('run_trial', {'node_id': '../../' + mine}),
        ('run_trial', {'node_id': 7}), ('run_trial', []), ('get_trial', {'trial_id': long}),
        ('read_policy', {'node_id': long}), ('discard', {'node_id': long, 'reason': long}),
        ('propose_policy', {'code': POLICY, 'hypothesis': 'x', 'parent': long}),
        ('propose_policy', {'code': POLICY, 'hypothesis': 'x', 'branch': long}),
        ('propose_policy', {'code': POLICY + '#' * (1 << 20), 'hypothesis': 'x'}),
        ('propose_policy', {'code': POLICY, 'hypothesis': long}),
        ('reset_cell', {'seed': float('inf')}), ('reset_cell', {'seed': 'seven'}), (long, {}),
        ('list_trials', {'last': 'all'})]
    for tool, arguments in calls:
        result = me.call(tool, arguments)
        assert not result.ok and 0 < len(result.text) < 600, (tool, arguments, result.text[:200])
        assert long not in result.text
    assert me.ledger.trials == [] and len(me.hypotheses.nodes()) == 1    # nothing ran, nothing committed
    assert me.call('run_trial', {'node_id': mine, 'trials': 1}).ok      # and the next good call works
