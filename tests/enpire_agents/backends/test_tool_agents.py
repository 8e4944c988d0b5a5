"""The agentic backends (OpenAI Responses tool calling, Anthropic tool use) against the loopback server:
real SDKs, real HTTP, scripted model turns driving the cell's tools on the in-process simulator."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from enpire_agents.backends.llm_common import BackendError
from enpire_agents.backends.tool_agents import AnthropicToolAgent, OpenAIToolAgent
from enpire_agents.cell_tools import CellToolbox, ToolLedger
from enpire_agents.experiment import config_dir, load_experiment
from enpire_agents.hypothesis_tree import HypothesisTree, empty_policy
from enpire_agents.team import LocalTrialRunner, Team
from tests.enpire_agents.backends.conftest import KEY_ENV, tiny_png
from tests.enpire_agents.backends.fake_llm_server import GOOD_POLICY, Step

# The in-process simulator's stand-in policy_tools has locate_block only: the goal pose written out.
POLICY = GOOD_POLICY.replace(
    'from enpire_task_pusht.policy_tools import GOAL_POSE, locate_block',
    'from enpire_task_pusht.policy_tools import locate_block\n\nGOAL_POSE = (256.0, 256.0)')

KINDS = ['openai', 'anthropic']
FRAME = tiny_png(120)


def quick_config(**overrides):
    return load_experiment(config_dir() / 'demo.yaml', **{
        'team.size': 1, 'attempts': 2, 'steps_per_attempt': 30, 'success_bar.k': 2, 'record': False,
        'success_bar.n_eval': 2, 'improvement.trials_per_node': 2, **overrides})


class BaggedLocalRunner(LocalTrialRunner):
    """The in-process simulator, each rollout given a bag folder holding one frame (the image path)."""

    def __init__(self, bag_dir: Path):
        super().__init__(perception='noisy_gt', task='pusht')
        self.bag_dir = bag_dir

    def run(self, code, seeds, **kwargs):
        outcomes = super().run(code, seeds, **kwargs)
        for o in outcomes:
            bag = self.bag_dir / f'trial_{o.seed}'
            bag.mkdir(parents=True, exist_ok=True)
            (bag / 'top.png').write_bytes(FRAME)
            o.bag_path = str(bag)
        return outcomes


def frames_of(bag: str):
    return {'top': (Path(bag) / 'top.png').read_bytes()}, [{'kind': 0, 'reason': 'clamped to the workspace'}]


@pytest.fixture
def toolbox(tmp_path):
    config = quick_config()
    tree = HypothesisTree.create(tmp_path / 'tree.git', config.name, empty_policy(config.task))
    ledger = ToolLedger(config.budgets, tmp_path / 'tool_calls.jsonl')
    runner = BaggedLocalRunner(tmp_path / 'bags')
    return CellToolbox('agent_0', config, tree, runner, ledger, frames=frames_of)


def make_agent(kind, server, tmp_path, **overrides):
    common = {'api_key_env': KEY_ENV, 'timeout': 10.0, 'max_retries': 2,
              'transcript_path': tmp_path / f'{kind}_turns.jsonl', **overrides}
    if kind == 'openai':
        return OpenAIToolAgent('gpt-test-model', base_url=server.openai_base_url, **common)
    return AnthropicToolAgent('claude-test-model', base_url=server.anthropic_base_url, **common)


def work_script():
    return [Step(kind='tools', calls=[('tree', {}), ('budget', {})]),
            Step(kind='tools', calls=[('propose_policy', {'code': POLICY, 'hypothesis': 'push behind'})]),
            Step(kind='tools', calls=[('run_trial', {'node_id': '{node_id}', 'trials': 2})]),
            Step(kind='tools', calls=[('get_trial', {'trial_id': '{trial_id}'})]),
            Step(kind='text', text='Kept it; the session ends.')]


@pytest.mark.parametrize('kind', KINDS)
def test_session_reads_proposes_tests_and_looks_at_frames(kind, server, toolbox, tmp_path):
    server.script(*work_script())
    agent = make_agent(kind, server, tmp_path)
    ended = agent.session(toolbox, 1)
    assert 'ended the session after 5 turn' in ended
    path = '/v1/responses' if kind == 'openai' else '/v1/messages'
    assert [r.path for r in server.requests] == [path] * 5
    first = server.requests[0].body
    names = [t['name'] for t in first['tools']]
    assert {'run_trial', 'get_trial', 'propose_policy', 'tree', 'budget', 'verify', 'reset_cell'} \
        <= set(names)
    if kind == 'openai':
        assert first['tools'][0]['type'] == 'function' and first['store'] is False and 'instructions' in first
    else:
        assert 'input_schema' in first['tools'][0] and 'on_attempt_failed' in json.dumps(first['messages'])
    # every call sent back with its result, paired by id (OpenAI: no server-side item ids, store=False)
    later = server.requests[2].body
    if kind == 'openai':
        calls = [i for i in later['input'] if i.get('type') == 'function_call']
        outputs = [i for i in later['input'] if i.get('type') == 'function_call_output']
        assert len(calls) == 3 and all('id' not in c for c in calls)
    else:
        calls = [b for m in later['messages'] if m['role'] == 'assistant' for b in m['content']]
        outputs = [b for m in later['messages'][1:] if m['role'] == 'user' for b in m['content']]
        calls = [{'call_id': c['id']} for c in calls if c['type'] == 'tool_use']
        outputs = [{'call_id': o['tool_use_id']} for o in outputs]
    assert [c['call_id'] for c in calls] == [o['call_id'] for o in outputs]
    # the node id the propose call returned went into the run_trial call; the frame came back as an image
    node = toolbox.hypotheses.nodes('agent_0')[0]
    assert node.result is not None and node.result.trials == 2
    results = server.requests[4].tool_results()
    assert results[-1][1] == 1 and not results[-1][2] and 'clamped to the workspace' in results[-1][0]
    assert node.node_id in server.requests[2].tool_results()[-1][0]
    # tokens: exactly the usage the API reported, over every turn, credited to the node
    assert toolbox.ledger.spent().tokens == 0       # a standalone ledger does not meter tokens
    assert node.tokens_in == sum(r.tokens_in for r in server.requests[:2])
    calls = [json.loads(line) for line in (tmp_path / 'tool_calls.jsonl').read_text().splitlines()]
    assert [c['tool'] for c in calls] == ['tree', 'budget', 'propose_policy', 'run_trial', 'get_trial']
    assert calls[3]['cost']['trials'] == 2 and calls[2]['args']['code'].startswith('<')
    turns = [json.loads(line) for line in (tmp_path / f'{kind}_turns.jsonl').read_text().splitlines()]
    assert sum(t['tokens_in'] + t['tokens_out'] for t in turns) == \
        sum(r.tokens_in + r.tokens_out for r in server.requests)


@pytest.mark.parametrize('kind', KINDS)
def test_malformed_calls_are_answered_with_the_reason(kind, server, toolbox, tmp_path):
    bad_args = '{"node_id": ' if kind == 'openai' else 'not an object'
    server.script(Step(kind='tools', calls=[('run_trial', bad_args), ('no_such_tool', {}),
                                            ('run_trial', {'node_id': 'deadbeef00'})]),
                  Step(kind='text', text='done'))
    ended = make_agent(kind, server, tmp_path).session(toolbox, 1)
    assert 'ended the session after 2 turn' in ended
    (malformed, unknown, missing) = server.requests[1].tool_results()
    assert malformed[2] and 'malformed call to run_trial' in malformed[0]
    assert unknown[2] and "unknown tool 'no_such_tool'" in unknown[0]
    assert missing[2] and 'not a node of this experiment' in missing[0]


@pytest.mark.parametrize('kind', KINDS)
def test_a_refusal_ends_the_session_and_its_tokens_count(kind, server, toolbox, tmp_path):
    server.script(Step(kind='refusal', text='I cannot help with controlling this robot.'))
    counted = []
    toolbox.on_tokens = counted.append
    ended = make_agent(kind, server, tmp_path).session(toolbox, 1)
    assert ended.startswith('the model refused') and 'cannot help' in ended
    (sent,) = server.requests
    assert counted == [sent.tokens_in + sent.tokens_out]


@pytest.mark.parametrize('kind', KINDS)
def test_rate_limits_are_retried_then_reported(kind, server, toolbox, tmp_path):
    server.script(Step(kind='rate_limited', retry_after='1'), Step(kind='tools', calls=[('budget', {})]),
                  Step(kind='text', text='done'))
    started = time.monotonic()
    assert 'after 2 turn' in make_agent(kind, server, tmp_path).session(toolbox, 1)
    assert time.monotonic() - started >= 0.9 and [r.status for r in server.requests] == [429, 200, 200]
    server.script(Step(kind='rate_limited', retry_after='7'))
    with pytest.raises(BackendError) as caught:
        make_agent(kind, server, tmp_path, max_retries=0).session(toolbox, 2)
    assert caught.value.kind == 'rate_limited' and caught.value.retry_after_s == 7.0


@pytest.mark.parametrize('kind', KINDS)
def test_team_counts_multi_turn_tokens_exactly_to_success(kind, server, tmp_path):
    """Tokens to success: every turn's usage up to the held-out confirmation, no more, no less."""
    config = quick_config(**{'success_bar.pass_at_k': 0.0, 'success_bar.pass_at_1': 0.0,
                             'team.agents': [{'backend': kind, 'model': 'test-model', 'tools': True}]})
    server.script(*work_script())
    agent = make_agent(kind, server, tmp_path)
    team = Team(config, BaggedLocalRunner(tmp_path / 'bags'), tmp_path / 'run', backends=[agent])
    result = team.run()
    assert result.reached_bar, result.stop_reason
    usage = sum(r.tokens_in + r.tokens_out for r in server.requests)
    assert result.tokens == usage and result.tokens_per_agent == {'agent_0': usage}
    # confirmed inside the run_trial call of turn 3: the turns after it are not part of tokens to success
    assert result.tokens_to_bar == sum(r.tokens_in + r.tokens_out for r in server.requests[:3])
    calls = (tmp_path / 'run' / 'tool_calls.jsonl').read_text()
    assert '"agent": "agent_0"' in calls and '"tool": "run_trial"' in calls


def test_agent_specs_build_tool_driven_agents(llm_env):
    from enpire_agents.backends.offline_agent import OfflineToolAgent
    from enpire_agents.experiment import AgentSpec
    from enpire_agents.team import make_backend
    assert isinstance(make_backend(AgentSpec(backend='openai', model='m', tools=True), 0, 0), OpenAIToolAgent)
    assert isinstance(make_backend(AgentSpec(backend='anthropic', model='m', tools=True), 0, 0),
                      AnthropicToolAgent)
    assert isinstance(make_backend(AgentSpec(backend='offline', tools=True), 0, 0), OfflineToolAgent)
    with pytest.raises(ValueError, match='no tool-driven agent'):
        AgentSpec(backend='regimes', tools=True)
