"""Each LLM backend against the loopback wire-format server: the real SDKs speak real HTTP to it."""
from __future__ import annotations

import base64
import logging
import pickle
import sys
import time

import pytest

from enpire_agents.backends.anthropic_backend import AnthropicBackend
from enpire_agents.backends.llm_common import BackendError
from enpire_agents.backends.openai_backend import OpenAIBackend, OpenAICompatibleBackend
from tests.enpire_agents.backends.conftest import BEST_CODE, FAILURE_REASON, KEY_ENV, TEST_KEY
from tests.enpire_agents.backends.fake_llm_server import GOOD_POLICY, FakeLLMServer, Step

BACKENDS = ['openai', 'anthropic']


def sent_key(recorded) -> str | None:
    auth = recorded.headers.get('authorization', '')
    return auth.removeprefix('Bearer ') if auth else recorded.headers.get('x-api-key')


@pytest.mark.parametrize('kind', BACKENDS)
def test_success_carries_the_prompt_and_counts_usage(kind, server, make_backend, request_):
    backend = make_backend(kind)
    proposal = backend.propose(request_)
    assert proposal.code.strip() == GOOD_POLICY.strip()
    assert proposal.hypothesis.startswith('push from behind the block')
    assert proposal.parent == 'a0-n3'                     # PARENT: none -> the current best
    (sent,) = server.requests
    assert proposal.tokens_in == sent.tokens_in > 0 and proposal.tokens_out == sent.tokens_out > 0
    assert sent.body['model'] == backend.model and 'temperature' not in sent.body   # API default
    assert sent_key(sent) == TEST_KEY
    text = '\n'.join(sent.texts())
    assert 'on_attempt_failed' in text and 'BEST-CODE-MARKER' in text and FAILURE_REASON in text
    images = sent.images()
    assert len(images) == 2
    if kind == 'openai':
        assert sent.path == '/v1/chat/completions' and sent.body['messages'][0]['role'] == 'system'
        assert images[0]['image_url']['url'].startswith('data:image/png;base64,')
        assert sent.body['max_completion_tokens'] == backend.max_output_tokens
    else:
        assert sent.path == '/v1/messages' and 'HYPOTHESIS:' in sent.body['system']
        assert sent.headers.get('anthropic-version')
        assert base64.b64decode(images[0]['source']['data']) == request_.key_frames_png[0]
        assert sent.body['max_tokens'] == backend.max_output_tokens


@pytest.mark.parametrize('kind', BACKENDS)
def test_parent_may_name_a_peer_node(kind, server, make_backend, request_):
    server.script(Step(kind='good', parent='a1-n5'))
    assert make_backend(kind).propose(request_).parent == 'a1-n5'
    server.script(Step(kind='good', parent='made-up-node'))   # not a node the request named
    assert make_backend(kind).propose(request_).parent == 'a0-n3'


@pytest.mark.parametrize('kind', BACKENDS)
def test_429_with_retry_after_is_retried_by_the_sdk(kind, server, make_backend, request_):
    server.script(Step(kind='rate_limited', retry_after='1'), 'good')
    started = time.monotonic()
    proposal = make_backend(kind, max_retries=2).propose(request_)
    assert time.monotonic() - started >= 0.9              # the SDK waited as retry-after said
    assert [r.status for r in server.requests] == [429, 200]
    assert proposal.tokens_in == server.requests[1].tokens_in


@pytest.mark.parametrize('kind', BACKENDS)
def test_429_beyond_the_retry_budget_is_rate_limited(kind, server, make_backend, request_):
    server.script(Step(kind='rate_limited', retry_after='7'))
    with pytest.raises(BackendError) as caught:
        make_backend(kind, max_retries=0).propose(request_)
    assert caught.value.kind == 'rate_limited' and caught.value.retryable
    assert caught.value.retry_after_s == 7.0 and caught.value.status == 429


@pytest.mark.parametrize('kind', BACKENDS)
def test_slow_reply_times_out(kind, server, make_backend, request_):
    server.script(Step(kind='slow', delay_s=5.0))
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        make_backend(kind, timeout=0.5, max_retries=0).propose(request_)
    assert caught.value.kind == 'timeout' and time.monotonic() - started < 4.0


@pytest.mark.parametrize('kind', BACKENDS)
def test_server_error(kind, server, make_backend, request_):
    server.script('server_error')
    with pytest.raises(BackendError) as caught:
        make_backend(kind, max_retries=0).propose(request_)
    assert caught.value.kind == 'server' and caught.value.status == 500


@pytest.mark.parametrize('kind', BACKENDS)
def test_malformed_gets_one_repair_round(kind, server, make_backend, request_):
    server.script('no_code', 'good')
    proposal = make_backend(kind).propose(request_)
    first, repair = server.requests
    assert proposal.code.strip() == GOOD_POLICY.strip()
    assert proposal.tokens_in == first.tokens_in + repair.tokens_in
    assert proposal.tokens_out == first.tokens_out + repair.tokens_out
    roles = [m['role'] for m in repair.body['messages']]
    assert roles[-2:] == ['assistant', 'user'] and 'rejected' in repair.texts()[-1]
    assert 'no Python code' in repair.texts()[-1]


@pytest.mark.parametrize('kind', BACKENDS)
def test_malformed_twice_is_an_error_with_the_tokens(kind, server, make_backend, request_):
    server.script('no_code', 'no_code')
    with pytest.raises(BackendError) as caught:
        make_backend(kind).propose(request_)
    err = caught.value
    assert err.kind == 'malformed' and not err.retryable and 'no Python code' in err.message
    assert err.tokens_in == sum(r.tokens_in for r in server.requests) and len(server.requests) == 2
    assert err.record().kind == 'malformed'
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.kind, clone.tokens_in, str(clone)) == (err.kind, err.tokens_in, str(err))


@pytest.mark.parametrize('kind', BACKENDS)
def test_forbidden_import_is_rejected(kind, server, make_backend, request_):
    server.script('forbidden', 'forbidden')
    with pytest.raises(BackendError) as caught:
        make_backend(kind).propose(request_)
    assert caught.value.kind == 'malformed' and "'os'" in caught.value.message
    assert "'os'" in server.requests[1].texts()[-1]        # the repair prompt said what was wrong


@pytest.mark.parametrize('kind', BACKENDS)
def test_wrong_or_missing_key_is_auth(kind, server, make_backend, request_, monkeypatch):
    monkeypatch.setenv(KEY_ENV, 'sk-wrong')
    with pytest.raises(BackendError) as caught:
        make_backend(kind).propose(request_)
    assert caught.value.kind == 'auth' and caught.value.status == 401 and len(server.requests) == 1
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BackendError) as caught:
        make_backend(kind).propose(request_)
    assert caught.value.kind == 'auth' and KEY_ENV in caught.value.message and len(server.requests) == 1


@pytest.mark.parametrize('kind', BACKENDS)
def test_key_never_shown_logged_or_written(kind, server, make_backend, request_, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)                       # the SDKs' and httpx's debug logs included
    backend = make_backend(kind)
    assert TEST_KEY not in repr(backend) and TEST_KEY not in str(backend) and KEY_ENV in repr(backend)
    assert TEST_KEY not in str(vars(backend))
    server.script('no_code', 'good', Step(kind='rate_limited', retry_after='9'))
    backend.propose(request_)
    with pytest.raises(BackendError) as caught:
        make_backend(kind, max_retries=0).propose(request_)
    assert all(sent_key(r) == TEST_KEY for r in server.requests)      # it did go out, in the header
    transcript = (tmp_path / f'{kind}_transcript.jsonl').read_text()
    assert transcript.count('\n') == 3 and 'BEST-CODE-MARKER' in transcript and 'base64,' not in transcript
    for written in (transcript, caplog.text, str(caught.value), caught.value.record().model_dump_json()):
        assert TEST_KEY not in written


def test_openai_compatible_endpoint_by_base_url(server, llm_env, request_):
    base_url = f'http://127.0.0.1:{server.port}/compat/v1'
    backend = OpenAICompatibleBackend('kimi-k2-test', base_url=base_url, api_key_env=llm_env, timeout=10,
                                      name='kimi')
    proposal = backend.propose(request_)
    (sent,) = server.requests
    assert backend.name == 'kimi' and proposal.code.strip() == GOOD_POLICY.strip()
    assert sent.path == '/compat/v1/chat/completions' and sent.body['model'] == 'kimi-k2-test'
    assert sent.body['max_tokens'] == backend.max_output_tokens and 'max_completion_tokens' not in sent.body
    assert sent.images() == [] and isinstance(sent.body['messages'][1]['content'], str)
    assert proposal.tokens_in == sent.tokens_in and sent_key(sent) == TEST_KEY
    with pytest.raises(ValueError):
        OpenAICompatibleBackend('m', base_url='')


@pytest.mark.parametrize('kind', BACKENDS)
def test_temperature_is_sent_where_the_api_has_one(kind, server, make_backend, request_):
    make_backend(kind, temperature=0.25).propose(request_)
    # anthropic 2.x's messages.create has no temperature: accepted by the backend, not sent
    assert server.requests[0].body.get('temperature') == (0.25 if kind == 'openai' else None)


@pytest.mark.parametrize('kind, module', [('openai', 'openai'), ('anthropic', 'anthropic')])
def test_missing_sdk_is_a_clear_error(kind, module, make_backend, request_, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)       # as on a machine without the package
    with pytest.raises(BackendError) as caught:
        make_backend(kind).propose(request_)
    assert caught.value.kind == 'request' and 'not installed' in caught.value.message


def test_names_and_defaults():
    assert OpenAIBackend('gpt-x').name == 'openai:gpt-x'
    assert OpenAIBackend('gpt-x').api_key_env == 'OPENAI_API_KEY'
    assert AnthropicBackend('claude-x').name == 'anthropic:claude-x'
    assert AnthropicBackend('claude-x').api_key_env == 'ANTHROPIC_API_KEY'


def test_server_records_the_best_code_as_sent(server, make_backend, request_):
    make_backend('openai').propose(request_)
    assert BEST_CODE.strip() in server.requests[0].texts()[1]


def test_server_is_loopback_only():
    with FakeLLMServer() as fake:
        assert fake._httpd.server_address[0] == '127.0.0.1' and fake.port > 0
