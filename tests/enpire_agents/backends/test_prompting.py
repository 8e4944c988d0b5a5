"""The prompt carries task, contract, best code, results, failures, peers; images in each API's shape."""
from __future__ import annotations

import base64

from enpire_agents.backends.prompting import (
    anthropic_messages,
    build_prompt,
    openai_messages,
    without_images,
)
from enpire_rollout.policy_contract import ALLOWED_IMPORTS
from tests.enpire_agents.backends.conftest import FAILURE_REASON, PEER_FAILURE


def test_prompt_sections(request_):
    parts = build_prompt(request_)
    assert 'HYPOTHESIS:' in parts.system and '```python' in parts.system
    text = parts.user
    assert 'Push-T' in text and 'coverage' in text                      # the task, expanded from 'pusht'
    assert 'class `Policy`' in text and 'on_attempt_failed' in text     # the contract text
    assert all(name in text for name in ALLOWED_IMPORTS)
    assert 'BEST-CODE-MARKER' in text and 'PEER-CODE-MARKER' in text
    assert FAILURE_REASON in text and PEER_FAILURE in text
    assert 'a0-n2' in text and 'a1-n5' in text and 'pass@1 3/8' in text
    assert len(parts.images_png) == 2


def test_first_round_and_text_only(request_):
    bare = request_.model_copy(update={'best_code': None, 'best': None, 'history': [], 'peer_best': [],
                                       'peer_code': {}})
    parts = build_prompt(bare, images=False)
    assert 'from scratch' in parts.user and parts.images_png == [] and 'Key frames' not in parts.user


def test_non_png_frames_are_dropped(request_):
    odd = request_.model_copy(update={'key_frames_png': [b'GIF89a...', request_.key_frames_png[0]]})
    assert len(build_prompt(odd).images_png) == 1


def test_openai_layout(request_):
    messages = openai_messages(build_prompt(request_))
    assert [m['role'] for m in messages] == ['system', 'user']
    parts = messages[1]['content']
    assert parts[0]['type'] == 'text'
    urls = [p['image_url']['url'] for p in parts if p['type'] == 'image_url']
    assert len(urls) == 2 and all(u.startswith('data:image/png;base64,') for u in urls)
    assert base64.b64decode(urls[0].split(',', 1)[1]) == request_.key_frames_png[0]


def test_anthropic_layout(request_):
    messages = anthropic_messages(build_prompt(request_))
    assert len(messages) == 1 and messages[0]['role'] == 'user'
    blocks = messages[0]['content']
    images = [b for b in blocks if b['type'] == 'image']
    assert len(images) == 2 and blocks[-1]['type'] == 'text'
    assert images[0]['source']['type'] == 'base64' and images[0]['source']['media_type'] == 'image/png'
    assert base64.b64decode(images[1]['source']['data']) == request_.key_frames_png[1]


def test_without_images_keeps_text(request_):
    stripped = without_images(openai_messages(build_prompt(request_)))
    assert 'base64,' not in str(stripped) and 'BEST-CODE-MARKER' in str(stripped)
