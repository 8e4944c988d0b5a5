"""`enpire bench` end to end on a tiny matrix: one offline agent on one as-fast simulated cell, one repeat."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.graph, pytest.mark.slow]


def _bench(*args, timeout=150):
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    return subprocess.run([sys.executable, '-m', 'enpire_bringup.cli', 'bench', *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_enpire_bench_runs_a_tiny_matrix_and_resumes(write_matrix, tmp_path):
    matrix = write_matrix(team_sizes=[1], repeats=1, pacing='as_fast', wall_clock_cap_s=25,
                          article={'speedup_1_to_8': 2.37})
    out = tmp_path / 'out'
    first = _bench(str(matrix), '--out', str(out))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = json.loads((out / 'results.json').read_text())
    (run,) = results['runs']
    assert run['status'] == 'done' and run['spec']['run_id'] == 'pusht-offline-team1-cells1-r0'
    assert run['trials'] >= 1 and run['ideas'] >= 1 and run['mru'] is not None and not run['replayed']
    assert run['curve'][0] == [0.0, 0.0] and run['wall_s'] > 0
    assert results['groups'][0]['mtu']['mean'] == pytest.approx(1.0)
    page = (out / 'tiny_bench.html').read_text()
    assert 'data:image/png;base64,' in page and 'pusht-offline-team1-cells1-r0' in page
    assert (out / 'runs' / run['spec']['run_id'] / 'hypothesis_tree.git').is_dir()
    assert 'time to success' in first.stdout and 'report:' in first.stdout
    final = json.loads(first.stdout.strip().splitlines()[-1])       # the article's figure beside ours
    assert final['article_speedup_1_to_8'] == 2.37 and 'speedup_1_to_8: None here, 2.37 in the article' \
        in first.stdout

    again = _bench(str(matrix), '--out', str(out), timeout=60)
    assert again.returncode == 0 and 'resuming: 1 of 1 runs already finished' in again.stdout


def test_enpire_bench_rejects_a_bad_matrix_with_the_reason(write_matrix):
    bad = write_matrix(team_sizes=[0])
    result = _bench(str(bad), '--dry-run', timeout=60)
    assert result.returncode == 2 and 'team sizes must be >= 1' in result.stderr


def test_enpire_bench_dry_run_lists_the_runs(write_matrix):
    result = _bench(str(write_matrix()), '--dry-run', timeout=60)
    assert result.returncode == 0 and '9 runs' in result.stdout


def test_an_llm_column_recorded_then_replayed_without_a_key(write_matrix, tmp_path, monkeypatch):
    from tests.enpire_agents.backends.conftest import KEY_ENV, TEST_KEY
    from tests.enpire_agents.backends.fake_llm_server import FakeLLMServer
    for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / 'out'
    with FakeLLMServer(expected_key=TEST_KEY) as server:
        agent = {'backend': 'openai_compatible', 'model': 'test-model', 'base_url': server.openai_base_url,
                 'api_key_env': KEY_ENV}
        matrix = write_matrix(backends=[{'name': 'llm', 'agent': agent, 'transcripts': 'record'}],
                              team_sizes=[1], repeats=1, pacing='as_fast', wall_clock_cap_s=25)
        monkeypatch.setenv(KEY_ENV, TEST_KEY)
        recorded = _bench(str(matrix), '--out', str(out))
        calls = len(server.requests)
    assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr[-3000:]
    transcript = out / 'transcripts' / 'pusht-llm-team1-cells1-r0' / 'agent_0.jsonl'
    assert calls >= 1 and len(transcript.read_text().splitlines()) == calls + 1
    assert TEST_KEY not in transcript.read_text()

    monkeypatch.delenv(KEY_ENV)                          # no key, and the server is gone
    replayed = _bench(str(matrix), '--out', str(tmp_path / 'replayed'), '--replay', str(out / 'transcripts'))
    assert replayed.returncode == 0, replayed.stdout[-3000:] + replayed.stderr[-3000:]
    results = json.loads((tmp_path / 'replayed' / 'results.json').read_text())
    (run,) = results['runs']
    assert run['status'] == 'done' and run['replayed'] and run['replay']['exchanges'] == calls
    original = json.loads((out / 'results.json').read_text())['runs'][0]
    assert run['tokens'] == original['tokens'] and not original['replayed']
    assert 'REPLAYED' in (tmp_path / 'replayed' / 'tiny_bench.html').read_text()
