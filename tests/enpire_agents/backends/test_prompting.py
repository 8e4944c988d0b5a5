"""The prompt carries task, contract, best code, results, failures, peers; images in each API's shape."""
from __future__ import annotations

import base64

from enpire_agents.backends.prompting import (
    MAX_ROLLOUTS,
    anthropic_messages,
    build_prompt,
    openai_messages,
    without_images,
)
from enpire_rollout.policy_runtime import allowed_imports
from enpire_rollout.trial_outcome import TrialOutcome
from tests.enpire_agents.backends.conftest import FAILURE_REASON, PEER_FAILURE


def test_prompt_sections(request_):
    parts = build_prompt(request_)
    assert 'HYPOTHESIS:' in parts.system and '```python' in parts.system
    text = parts.user
    assert 'Push-T' in text and 'coverage' in text                      # the task, expanded from 'pusht'
    assert 'class `Policy`' in text and 'on_attempt_failed' in text     # the contract text
    assert all(name in text for name in allowed_imports('pusht'))
    assert 'BEST-CODE-MARKER' in text and 'PEER-CODE-MARKER' in text
    assert FAILURE_REASON in text and PEER_FAILURE in text
    assert 'a0-n2' in text and 'a1-n5' in text and 'pass@1 3/8' in text
    assert len(parts.images_png) == 2


def _rollout(seed, scores, reasons, success_at=None, failure_reason=''):
    return TrialOutcome(seed=seed, attempts=8, attempt_scores=scores, attempt_reasons=reasons,
                          attempt_successes=[i + 1 == success_at for i in range(len(scores))],
                          failure_reason=failure_reason)


def test_results_show_each_rollouts_attempt_scores_and_reasons(request_):
    rollouts = [_rollout(11, [0.61, 0.97], ['short of the goal', 'success'], success_at=2),
                _rollout(12, [0.2, 0.35], ['T rotated 40 deg from the goal', 'pushed off the table']),
                _rollout(13, [0.1], ['stale frame'], failure_reason='time budget of 30.0 s exhausted')]
    best = request_.best.model_copy(update={'rollouts': rollouts})
    older = request_.history[0].model_copy(update={'rollouts': [_rollout(99, [0.05], ['far'])]})
    text = build_prompt(request_.model_copy(update={'best': best, 'history': [older, best]})).user
    assert ('seed 12: attempt scores [0.20 (T rotated 40 deg from the goal); 0.35 (pushed off the table)] '
            '-> no success') in text
    assert 'seed 11: attempt scores [0.61 (short of the goal); 0.97] -> success at attempt 2' in text
    assert 'seed 13: attempt scores [0.10 (stale frame)] -> not completed: time budget' in text
    assert text.index('seed 12') < text.index('seed 11')             # failed rollouts first
    assert text.count('seed 12:') == 1                               # the best's rollouts once
    assert 'seed 99' not in text                                     # older results stay one line


def test_rollout_detail_is_bounded(request_):
    many = [_rollout(s, [0.1] * 12, ['far'] * 12) for s in range(20)]
    best = request_.best.model_copy(update={'rollouts': many})
    text = build_prompt(request_.model_copy(update={'best': best, 'history': [best]})).user
    assert text.count('attempt scores [') == MAX_ROLLOUTS
    assert f'({20 - MAX_ROLLOUTS} more rollouts not shown)' in text and '... 4 more]' in text


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
