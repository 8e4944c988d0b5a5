"""`enpire mcp`: the mcp SDK's client over stdio (and streamable HTTP) against the real server process."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.enpire_agents.backends.fake_llm_server import FORBIDDEN_POLICY, GOOD_POLICY

TOOLS = {'run_trial', 'get_trial', 'list_trials', 'reset_cell', 'verify', 'propose_policy', 'tree', 'budget'}


def experiment_file(tmp_path: Path) -> Path:
    data = {'name': 'mcp_test', 'task': 'pusht', 'cells': ['cell_0'],
            'team': {'size': 1}, 'pacing': 'as_fast', 'record': True,
            'budgets': {'wall_clock_s': 3600, 'trials': 3},
            'success_bar': {'k': 2, 'pass_at_k': 0.99, 'n_eval': 2},
            'attempts': 2, 'steps_per_attempt': 20, 'trial_time_budget_s': 60,
            'improvement': {'seeds': {'start': 0, 'count': 50}, 'trials_per_node': 1},
            'evaluation': {'seeds': {'start': 900000, 'count': 5}}}
    path = tmp_path / 'mcp_test.yaml'
    path.write_text(yaml.safe_dump(data))
    return path


def server_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ['-m', 'enpire_bringup.cli', 'mcp', '--experiment', str(experiment_file(tmp_path)),
            '--out', str(tmp_path / 'record'), *extra]


def text(result) -> str:
    return '\n'.join(c.text for c in result.content if c.type == 'text')


async def call(client, tool: str, **args):
    return await client.call_tool(tool, args)


def stdio_session(tmp_path, body, timeout_s: float = 240.0):
    from mcp import Client, StdioServerParameters
    params = StdioServerParameters(command=sys.executable, args=server_argv(tmp_path), env=dict(os.environ))

    async def run():
        async with Client(params, read_timeout_seconds=timeout_s) as client:
            return await body(client)
    return asyncio.run(asyncio.wait_for(run(), timeout_s))


def test_help_names_the_transports_and_the_agent():
    out = subprocess.run([sys.executable, '-m', 'enpire_bringup.cli', 'mcp', '--help'], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and '--transport {stdio,http}' in out.stdout and '--agent' in out.stdout


def test_tools_are_listed_without_a_cell_and_a_call_says_it_is_unreachable(tmp_path):
    async def body(client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert TOOLS <= set(tools)
        assert 'held-out' not in json.dumps(tools['run_trial'].input_schema)
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert resources == {'enpire://task', 'enpire://policy/contract', 'enpire://policy/tools'}
        contract = (await client.read_resource('enpire://policy/contract')).contents[0].text
        assert 'on_attempt_failed' in contract
        assert 'locate_block' in (await client.read_resource('enpire://policy/tools')).contents[0].text
        node = json.loads(text(await call(client, 'propose_policy', code=GOOD_POLICY, hypothesis='behind')))
        trial = await call(client, 'run_trial', node_id=node['node_id'])
        assert trial.is_error and 'the cell is not reachable' in text(trial) and 'cell_0' in text(trial)
        verify = await call(client, 'verify')
        assert verify.is_error and 'not reachable' in text(verify)
    stdio_session(tmp_path, body, timeout_s=120)
    log = [json.loads(line) for line in (tmp_path / 'record' / 'tool_calls.jsonl').read_text().splitlines()]
    assert [(e['tool'], e['ok']) for e in log] == [('propose_policy', True), ('run_trial', False),
                                                   ('verify', False)]
    assert all(e['agent'] == 'agent_0' and e['time'] > 0 for e in log)


@pytest.mark.graph
@pytest.mark.slow
def test_an_mcp_client_runs_reads_commits_and_is_refused_on_the_simulated_cell(sim_cells, ros_node,
                                                                                 tmp_path):
    sim_cells(['cell_0'], bag_dir=lambda cell: tmp_path / 'bags')
    from enpire_agents.agent_node import wait_for_cells
    assert wait_for_cells(ros_node.node, ['cell_0'], timeout_s=90) == []

    async def body(client):
        assert TOOLS <= {t.name for t in (await client.list_tools()).tools}
        node = json.loads(text(await call(client, 'propose_policy', code=GOOD_POLICY,
                                          hypothesis='push from behind the block toward the goal')))
        run = await call(client, 'run_trial', node_id=node['node_id'], trials=1)
        assert not run.is_error, text(run)
        ran = json.loads(text(run))
        (rollout,) = ran['rollouts']
        assert rollout['attempt_scores'] and rollout['bag'] and ran['timings_s']['execute'] > 0
        trial = await call(client, 'get_trial', trial_id=rollout['trial_id'])
        assert not trial.is_error, text(trial)
        images = [c for c in trial.content if c.type == 'image']
        assert images and all(base64.b64decode(i.data).startswith(b'\x89PNG') for i in images)
        detail = json.loads(text(trial))
        assert detail['attempts'][0]['reason'] and isinstance(detail['safety_events'], list)
        listed = json.loads(text(await call(client, 'list_trials')))
        assert [t['trial_id'] for t in listed['trials']] == [rollout['trial_id']]
        tree = json.loads(text(await call(client, 'tree')))
        (mine,) = [n for n in tree['nodes'] if n['node_id'] == node['node_id']]
        assert mine['agent'] == 'agent_0' and mine['trials'] == 1
        assert tree['best']['agent_0'] == node['node_id']
        verdict = await call(client, 'verify')
        assert not verdict.is_error
        assert json.loads(text(verdict))['verdict'] in ('success', 'failure', 'uncertain')
        assert any(c.type == 'image' for c in verdict.content)
        reset = json.loads(text(await call(client, 'reset_cell', seed=7)))
        assert reset['seed'] == 7 and 'success' in reset
        refused = {
            'held-out seed': await call(client, 'run_trial', node_id=node['node_id'], seeds=[900001]),
            'reset on a held-out seed': await call(client, 'reset_cell', seed=900002),
            'another branch': await call(client, 'propose_policy', code=GOOD_POLICY, hypothesis='x',
                                         branch='agent/agent_1'),
            'over budget': await call(client, 'run_trial', node_id=node['node_id'], trials=3),
            'static check': await call(client, 'propose_policy', code=FORBIDDEN_POLICY, hypothesis='shell'),
        }
        return {what: (r.is_error, text(r)) for what, r in refused.items()}

    answers = stdio_session(tmp_path, body)
    assert all(is_error for is_error, _ in answers.values()), answers
    assert 'not improvement seeds' in answers['held-out seed'][1]
    assert '900001' in answers['held-out seed'][1] and 'held-out' not in answers['held-out seed'][1]
    assert 'not improvement seeds' in answers['reset on a held-out seed'][1]
    assert "another agent's branch" in answers['another branch'][1]
    assert 'over budget: 3 trial(s) asked, 2 left' in answers['over budget'][1]
    assert 'static check' in answers['static check'][1] and "'os'" in answers['static check'][1]
    log = [json.loads(line) for line in (tmp_path / 'record' / 'tool_calls.jsonl').read_text().splitlines()]
    assert len(log) == 12 and sum(not e['ok'] for e in log) == 5
    (run_entry,) = [e for e in log if e['tool'] == 'run_trial' and e['ok']]
    assert run_entry['cost']['trials'] == 1 and run_entry['cost']['robot_s'] > 0
    from enpire_agents.hypothesis_tree import HypothesisTree
    reopened = HypothesisTree.open(tmp_path / 'record' / 'hypothesis_tree.git')
    (committed,) = reopened.nodes('agent_0')
    assert committed.result.trials == 1 and reopened.agents() == ['agent_0']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_streamable_http_on_loopback(node_processes, tmp_path):
    from mcp import Client
    port = _free_port()
    proc = node_processes.start('mcp', server_argv(tmp_path, '--transport', 'http', '--port', str(port)))

    async def run():
        for _ in range(300):          # until the server listens (no fixed sleep: poll the port)
            with socket.socket() as s:
                if s.connect_ex(('127.0.0.1', port)) == 0:
                    break
            assert proc.poll() is None, node_processes.log('mcp')
            await asyncio.sleep(0.1)
        async with Client(f'http://127.0.0.1:{port}/mcp') as client:
            names = {t.name for t in (await client.list_tools()).tools}
            budget = json.loads(text(await call(client, 'budget')))
            task = (await client.read_resource('enpire://task')).contents[0].text
            return names, budget, task
    names, budget, task = asyncio.run(asyncio.wait_for(run(), 90))
    assert TOOLS <= names and budget['left']['trials'] == 3 and 'Push-T' in task
    argv = server_argv(tmp_path, '--transport', 'http', '--host', '0.0.0.0')
    refused = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and 'loopback only' in refused.stderr
