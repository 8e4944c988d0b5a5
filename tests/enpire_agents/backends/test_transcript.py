"""Transcripts: exchanges recorded against the loopback wire-format server, replayed with no key or net."""
import json

import pytest

from enpire_agents.backends import transcript
from enpire_agents.backends.llm_common import BackendError
from enpire_agents.backends.transcript import ReplayBackend
from tests.enpire_agents.backends.conftest import KEY_ENV, TEST_KEY
from tests.enpire_agents.backends.fake_llm_server import GOOD_POLICY

BACKENDS = ['openai', 'anthropic']


def _record_two_rounds(kind, server, make_backend, request_, path):
    """Round 4 needs a repair round (no code first), round 5 a 429 then a good reply."""
    server.script('no_code', 'good', 'rate_limited', 'good')
    backend = transcript.record(make_backend(kind, transcript_path=None, max_retries=2), path)
    first = backend.propose(request_)
    second = backend.propose(request_.model_copy(update={'round': 5}))
    return backend, [first, second]


@pytest.mark.parametrize('kind', BACKENDS)
def test_recorded_exchanges_replay_offline_to_the_same_proposals(kind, server, make_backend, request_,
                                                                 tmp_path, monkeypatch):
    path = tmp_path / 'agent_0.jsonl'
    backend, recorded = _record_two_rounds(kind, server, make_backend, request_, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]['format'] == 'enpire-transcript-1' and lines[0]['provider'] == backend.provider
    exchanges = lines[1:]
    assert [(e['round'], e['attempt']) for e in exchanges] == [(4, 1), (4, 2), (5, 1)]
    assert 'HYPOTHESIS' not in exchanges[0]['reply'] and exchanges[1]['reply'].startswith('HYPOTHESIS')
    assert exchanges[2]['latency_s'] >= 1.0          # the 429's retry-after, waited inside the SDK
    usage_in = 'prompt_tokens' if kind == 'openai' else 'input_tokens'
    assert all(e['usage'][usage_in] == e['tokens_in'] > 0 for e in exchanges)
    assert len({e['request_digest'] for e in exchanges}) == 3 and all(len(e['request_digest']) == 64
                                                                     for e in exchanges)
    text = path.read_text()
    assert TEST_KEY not in text and 'authorization' not in text.lower() and 'x-api-key' not in text
    assert 'BEST-CODE-MARKER' not in text            # the prompt itself is not kept, only its digest

    calls = len(server.requests)
    monkeypatch.delenv(KEY_ENV)
    replay = ReplayBackend(path, pace=False)
    assert replay.name == backend.name and replay.replayed
    again = [replay.propose(request_), replay.propose(request_.model_copy(update={'round': 5}))]
    assert [(p.code, p.hypothesis, p.parent, p.tokens_in, p.tokens_out) for p in again] == \
        [(p.code, p.hypothesis, p.parent, p.tokens_in, p.tokens_out) for p in recorded]
    assert again[0].code.strip() == GOOD_POLICY.strip()
    assert len(server.requests) == calls and replay.served == 3 and replay.prompt_mismatches == 0

    with pytest.raises(BackendError, match='exhausted after 3 exchanges') as caught:
        replay.propose(request_.model_copy(update={'round': 6}))
    assert caught.value.kind == 'transcript' and replay.stopped


def test_replay_out_of_order_is_a_clear_error(server, make_backend, request_, tmp_path):
    path = tmp_path / 'agent_0.jsonl'
    _record_two_rounds('openai', server, make_backend, request_, path)
    with pytest.raises(BackendError, match='diverged at a0 round 5 attempt 1.*holds a0 round 4') as caught:
        ReplayBackend(path, pace=False).propose(request_.model_copy(update={'round': 5}))
    assert caught.value.kind == 'transcript'


def test_a_different_prompt_is_counted_or_refused_when_strict(server, make_backend, request_, tmp_path):
    path = tmp_path / 'agent_0.jsonl'
    _record_two_rounds('openai', server, make_backend, request_, path)
    changed = request_.model_copy(update={'best_code': request_.best_code + '# another outcome\n'})
    lenient = ReplayBackend(path, pace=False)
    assert lenient.propose(changed).code.strip() == GOOD_POLICY.strip()
    assert lenient.prompt_mismatches == 2            # the first reply and its repair round
    with pytest.raises(BackendError, match='request differs from the recorded one'):
        ReplayBackend(path, pace=False, strict=True).propose(changed)


def test_recorded_errors_replay_as_errors(server, make_backend, request_, tmp_path):
    path = tmp_path / 'agent_0.jsonl'
    server.script('server_error', 'server_error', 'server_error', 'server_error')
    backend = transcript.record(make_backend('openai', max_retries=0), path)
    with pytest.raises(BackendError) as recorded:
        backend.propose(request_)
    with pytest.raises(BackendError) as replayed:
        ReplayBackend(path, pace=False).propose(request_)
    assert replayed.value.kind == recorded.value.kind == 'server'


def test_only_llm_backends_are_recorded_and_a_missing_transcript_is_clear(tmp_path):
    from enpire_agents.backends.offline import OfflineBackend
    with pytest.raises(TypeError, match='not an LLM backend'):
        transcript.record(OfflineBackend(seed=0), tmp_path / 'x.jsonl')
    with pytest.raises(BackendError, match='no transcript at'):
        ReplayBackend(tmp_path / 'missing.jsonl')
    (tmp_path / 'bad.jsonl').write_text('{"not": "a header"}\n')
    with pytest.raises(BackendError, match='is not an enpire-transcript-1 transcript'):
        ReplayBackend(tmp_path / 'bad.jsonl')
