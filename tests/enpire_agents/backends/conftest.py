"""Fixtures for the LLM backend tests: the loopback wire-format server, a test key in the environment,
an ImprovementRequest carrying everything a prompt must show, and a factory for each backend."""
from __future__ import annotations

import struct
import zlib

import pytest

from enpire_agents.backends.anthropic_backend import AnthropicBackend
from enpire_agents.backends.base import ImprovementRequest, TrialSummary
from enpire_agents.backends.openai_backend import OpenAIBackend
from enpire_rollout import policy_contract
from tests.enpire_agents.backends.fake_llm_server import FakeLLMServer

TEST_KEY = 'sk-test-ENPIRE-not-a-real-key-7f3a9c'
KEY_ENV = 'ENPIRE_TEST_LLM_KEY'
BEST_CODE = '''\
class Policy:
    # BEST-CODE-MARKER: the current best, which the prompt must carry
    def reset(self, context):
        pass

    def act(self, observation):
        return 256.0, 256.0

    def on_attempt_failed(self, report):
        pass
'''
FAILURE_REASON = 'block rotated past the goal: theta error 0.61 rad at attempt end'
PEER_FAILURE = 'pusher lost contact with the stem'


def tiny_png(shade: int) -> bytes:
    """A real 2x2 grey PNG, built by hand so the tests need no image library."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))
    rows = b''.join(b'\x00' + bytes([shade, shade]) for _ in range(2))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 2, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


@pytest.fixture
def llm_env(monkeypatch):
    """The key in the environment, and no proxy settings that could route loopback traffic elsewhere."""
    for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy',
                 'ANTHROPIC_CUSTOM_HEADERS'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    return KEY_ENV


@pytest.fixture
def server(llm_env):
    with FakeLLMServer(expected_key=TEST_KEY) as fake:
        yield fake


@pytest.fixture
def request_():
    best = TrialSummary(node_id='a0-n3', hypothesis='approach from the stem side', trials=8, successes_at_1=3,
                        successes_at_k=5, mean_score=0.71, failure_reasons=[FAILURE_REASON, 'timeout'])
    older = TrialSummary(node_id='a0-n2', hypothesis='straight push to goal', trials=8, successes_at_1=1,
                         successes_at_k=2, mean_score=0.4, failure_reasons=['block pushed off the goal'])
    peer = TrialSummary(node_id='a1-n5', hypothesis='rotate first, then translate', trials=8,
                        successes_at_1=4, successes_at_k=6, mean_score=0.8, failure_reasons=[PEER_FAILURE])
    return ImprovementRequest(
        task='pusht', contract=policy_contract.__doc__, agent_id='a0', round=4, best_code=BEST_CODE,
        best=best, history=[older, best], peer_best=[peer],
        peer_code={'a1-n5': '# PEER-CODE-MARKER\n' + BEST_CODE},
        key_frames_png=[tiny_png(40), tiny_png(200)], seed=7)


@pytest.fixture
def make_backend(server, tmp_path):
    """make_backend('openai' | 'anthropic', **overrides): a backend pointed at the loopback server."""
    def make(kind: str, **overrides):
        common = {'api_key_env': KEY_ENV, 'timeout': 10.0, 'max_retries': 2,
                  'transcript_path': tmp_path / f'{kind}_transcript.jsonl'}
        common.update(overrides)
        if kind == 'openai':
            return OpenAIBackend('gpt-test-model', base_url=server.openai_base_url, **common)
        return AnthropicBackend('claude-test-model', base_url=server.anthropic_base_url, **common)
    return make
