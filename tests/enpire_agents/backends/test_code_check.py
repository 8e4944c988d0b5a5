"""The static gate every backend (and the agent loop) runs on policy code."""
from __future__ import annotations

import pytest

from enpire_agents.backends.code_check import check_code, check_reply, extract_code
from tests.enpire_agents.backends.fake_llm_server import FORBIDDEN_POLICY, GOOD_POLICY

BODY = '''
class Policy:
    def reset(self, context):
        {reset}

    def act(self, observation):
        return 256.0, 256.0

    def on_attempt_failed(self, report):
        pass
'''


def policy(header: str = '', reset: str = 'pass') -> str:
    return header + '\n' + BODY.format(reset=reset)


def test_good_policy_passes():
    result = check_code(GOOD_POLICY, 'pusht')
    assert result.ok and result.kind == 'ok' and result.code == GOOD_POLICY


def test_extracts_the_fenced_block_that_defines_policy():
    reply = f'Plan:\n```python\nx = 1\n```\nThe policy:\n```python\n{GOOD_POLICY}```\nDone.'
    assert extract_code(reply).strip() == GOOD_POLICY.strip()


def test_whole_reply_used_when_it_is_code_and_prose_is_no_code():
    assert extract_code(GOOD_POLICY).strip() == GOOD_POLICY.strip()
    assert extract_code('Hello') is None               # parses as an expression, but is not code
    result = check_reply('I would push harder next time.', 'pusht')
    assert not result.ok and result.kind == 'no_code'


def test_unterminated_fence_is_still_extracted():
    assert 'class Policy' in extract_code('```python\n' + GOOD_POLICY)


def test_syntax_error_reports_the_line():
    result = check_code(policy(reset='return (1,'), 'pusht')
    assert result.kind == 'syntax' and result.line is not None and 'line' in result.reason


@pytest.mark.parametrize('source, missing', [
    ('x = 1\n', 'class Policy'),
    ('class Policy:\n    def act(self, observation):\n        return 0.0, 0.0\n', 'reset'),
])
def test_contract(source, missing):
    result = check_code(source, 'pusht')
    assert result.kind == 'contract' and missing in result.reason


@pytest.mark.parametrize('header, reset', [
    ('import os', 'pass'),
    ('import subprocess', 'pass'),
    ('from enpire_rollout import sandbox', 'pass'),
    ('import enpire_rollout', 'pass'),
    ('from . import helpers', 'pass'),
    ('', '__import__("os").system("x")'),
    ('', 'eval("1")'),
    ('', 'exec("x = 1")'),
    ('', 'open("/etc/passwd")'),
    ('', 'compile("1", "f", "eval")'),
    ('', 'self.k = ().__class__.__bases__[0].__subclasses__()'),
    ('', 'self.g = self.reset.__globals__'),
    ('import numpy as np', 'np.load("x.npy", allow_pickle=True)'),
    ('import math', 'getattr(math, "pi")'),
    ('', 'getattr(self, "__dict__")'),
    ('from typing import get_type_hints', 'pass'),
    ('from numpy import *', 'pass'),
])
def test_forbidden(header, reset):
    result = check_code(policy(header, reset), 'pusht')
    assert not result.ok and result.kind == 'forbidden', result
    assert 'not allowed' in result.reason and result.line is not None


@pytest.mark.parametrize('header', [
    'from __future__ import annotations\nimport math\nimport numpy as np\nimport numpy.linalg',
    'from enpire_task_pusht.policy_tools import locate_block, GOAL_POSE',
    'from enpire_task_pusht import policy_tools\nfrom enpire_rollout.policy_contract import Observation',
    'from collections import deque\nfrom dataclasses import dataclass\nfrom math import *',
])
def test_allowed_imports_and_ordinary_reflection(header):
    result = check_code(policy(header, reset='self.gain = getattr(self, "gain", 1.0)'), 'pusht')
    assert result.ok, result.reason


def test_forbidden_reply_names_the_module():
    result = check_reply('```python\n' + FORBIDDEN_POLICY + '```', 'pusht')
    assert result.kind == 'forbidden' and "'os'" in result.reason
