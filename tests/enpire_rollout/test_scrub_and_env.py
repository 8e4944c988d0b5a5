"""What leaves the server is scrubbed and capped; what starts a child gets an allow-listed environment."""
from __future__ import annotations

import base64
import subprocess

import pytest

from enpire_rollout.child_env import allowlisted_env
from enpire_rollout.scrub import REDACTED, scrub, scrub_value


def test_scrub_removes_the_environments_secret_values_and_key_formats(monkeypatch):
    monkeypatch.setenv('LAB_DB_PASSWORD', 'correct-horse-battery')
    monkeypatch.setenv('HARMLESS', 'correct-horse-battery-2')
    text = ('db correct-horse-battery, openai sk-proj-' + 'a' * 40 + ', aws AKIAABCDEFGHIJKLMNOP, '
            'gh ghp_' + 'b' * 36 + ', Bearer ' + 'c' * 30 + ', sha ' + 'f' * 64)
    out = scrub(text)
    assert 'correct-horse-battery' not in out.replace('correct-horse-battery-2', '')
    assert 'sk-proj-aaaa' not in out and 'AKIAABCD' not in out and 'ghp_bbbb' not in out
    assert 'c' * 30 not in out and out.count(REDACTED) >= 5
    assert 'f' * 64 in out                      # a content hash is no secret


@pytest.mark.parametrize('prefix', ['', 'a', 'ab', 'abc'])
def test_scrub_removes_encoded_forms_of_the_secret_values(monkeypatch, prefix):
    secret = 'hunter2-canary-password-XYZ'
    monkeypatch.setenv('LAB_DB_PASSWORD', secret)
    raw = (prefix + secret + 'tail').encode()
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(), raw.hex(),
                    raw.hex().upper(), secret[::-1]):
        out = scrub(f'x {encoded} y')
        assert REDACTED in out, (encoded, out)
        left = out.split(REDACTED)
        assert all(len(part) < len(encoded) // 2 for part in left), out   # at most a few edge characters
    assert scrub('aGFybWxlc3MgdGV4dA== 68656c6c6f') == 'aGFybWxlc3MgdGV4dA== 68656c6c6f'


def test_scrub_caps_after_scrubbing_and_walks_structures(monkeypatch):
    secret = 'sk-ant-' + 'x' * 60
    out = scrub('y' * 1990 + secret, limit=2000)
    assert 'sk-ant-xx' not in out and len(out) < 2100      # a cut never leaves half a secret behind
    assert len(scrub('z' * 10_000)) < 2100 and 'characters cut' in scrub('z' * 10_000)
    value = scrub_value({'reason': [secret, 3], secret: 1.5})
    assert secret not in repr(value) and value['reason'][1] == 3


def test_child_environment_is_an_allow_list(monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-proj-' + 'k' * 40)
    monkeypatch.setenv('ROS_DOMAIN_ID', '7')
    env = allowlisted_env(pythonpath=['/a', '/b'], GIT_CONFIG_NOSYSTEM='1')
    assert 'OPENAI_API_KEY' not in env and 'ROS_DOMAIN_ID' not in env
    assert env['PYTHONPATH'] == '/a:/b' and env['OMP_NUM_THREADS'] == '1'
    assert env['GIT_CONFIG_NOSYSTEM'] == '1'
    shown = subprocess.run(['env'], env=env, capture_output=True, text=True, check=True).stdout
    assert 'sk-proj' not in shown


def test_git_of_the_hypothesis_tree_sees_no_secret(monkeypatch, tmp_path):
    from enpire_agents.hypothesis_tree import HypothesisTree
    monkeypatch.setenv('ANTHROPIC_API_KEY', 'sk-ant-' + 'q' * 40)
    env = HypothesisTree._env(object.__new__(HypothesisTree), None)
    assert 'ANTHROPIC_API_KEY' not in env and env['GIT_CONFIG_NOSYSTEM'] == '1'
