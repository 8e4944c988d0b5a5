"""The prompt an LLM backend sends: built from an ImprovementRequest, independent of the wire format.

`build_prompt` gives a system text, a user text and the key frames; `openai_messages` and
`anthropic_messages` lay those out in each API's content-part shapes (images as data URLs for OpenAI,
base64 image blocks for Anthropic). Everything is bounded (history, peers, code and reason lengths,
image count and size) so a long experiment does not grow the prompt without limit.
"""
from __future__ import annotations

import base64

from enpire_common import task_registry
from pydantic import BaseModel, Field

from enpire_agents.backends.base import ImprovementRequest, TrialSummary
from enpire_rollout.policy_runtime import allowed_imports
from enpire_rollout.trial_outcome import TrialOutcome

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 4_000_000      # under the APIs' per-image limits (Anthropic: 5 MB)
MAX_HISTORY = 6
MAX_PEERS = 4
MAX_PEER_CODE = 2
MAX_CODE_CHARS = 12_000
MAX_REASONS = 4
MAX_REASON_CHARS = 240
MAX_ROLLOUTS = 4                 # per result: the failed rollouts first, each with its attempts' scores
MAX_ATTEMPTS = 8
MAX_ATTEMPT_REASON_CHARS = 80

SYSTEM_PROMPT = """\
You are a robotics research engineer improving the control policy of a robot cell, one idea at a time.
Each proposal is run on the cell and scored; you see the results of earlier proposals.
Write the complete policy as one Python module, following the policy contract exactly.
The policy runs in a sandbox: import only the allowed modules; no files, network, processes,
threads, eval/exec, or introspection of modules and frames. Keep act() fast (a deadline applies per step).

Reply in this format:
HYPOTHESIS: <one line: what your change does and why it should raise the success rate>
PARENT: <the node id you revise; omit to revise the current best>
```python
<the complete policy source>
```"""

REPAIR_TEMPLATE = """\
Your reply was rejected before running: {reason}
Reply again in the same format (HYPOTHESIS line, then the complete policy in one ```python block),
fixing that problem and keeping the idea."""


def contract_text() -> str:
    """The policy contract as agents read it: the source of enpire_rollout.policy_contract."""
    import inspect

    from enpire_rollout import policy_contract
    return inspect.getsource(policy_contract)


class PromptParts(BaseModel):
    system: str
    user: str
    images_png: list[bytes] = Field(default_factory=list)


def describe_task(task: str) -> str:
    """The task's own description for LLM backends (`Task.prompt`); a task not installed is sent as given."""
    if task_registry.problem(task):
        return task
    return task_registry.get(task).load('prompt')


def _rate(successes: int, trials: int) -> str:
    return f'{successes}/{trials}' + (f' ({successes / trials:.0%})' if trials else '')


def summarise(summary: TrialSummary, rollouts: bool = False) -> str:
    """One result as a line a model can compare across nodes (`rollouts`: each attempt's score and reason)."""
    line = (f'node {summary.node_id}: "{_clip(summary.hypothesis, 200)}" -- '
            f'pass@1 {_rate(summary.successes_at_1, summary.trials)}, '
            f'pass@k {_rate(summary.successes_at_k, summary.trials)}, '
            f'mean score {summary.mean_score:.3f}')
    reasons = [_clip(r, MAX_REASON_CHARS) for r in summary.failure_reasons[:MAX_REASONS]]
    if reasons:
        line += '\n    failures (most common first): ' + '; '.join(reasons)
    if rollouts and summary.rollouts:
        shown = sorted(summary.rollouts, key=lambda r: r.first_success is not None)[:MAX_ROLLOUTS]
        line += ''.join(f'\n    {describe_rollout(r)}' for r in shown)
        if len(summary.rollouts) > len(shown):
            line += f'\n    ({len(summary.rollouts) - len(shown)} more rollouts not shown)'
    return line


def describe_rollout(rollout: TrialOutcome) -> str:
    """One rollout: each attempt's score with its verdict reason, then how the rollout ended."""
    attempts = []
    for index, score in enumerate(rollout.attempt_scores[:MAX_ATTEMPTS]):
        reason = rollout.attempt_reasons[index] if index < len(rollout.attempt_reasons) else ''
        said = f' ({_clip(reason, MAX_ATTEMPT_REASON_CHARS)})' if reason and reason != 'success' else ''
        attempts.append(f'{score:.2f}{said}')
    if len(rollout.attempt_scores) > MAX_ATTEMPTS:
        attempts.append(f'... {len(rollout.attempt_scores) - MAX_ATTEMPTS} more')
    first = rollout.first_success
    end = (f'success at attempt {first}' if first else
           f'not completed: {_clip(rollout.failure_reason, MAX_ATTEMPT_REASON_CHARS)}'
           if rollout.failure_reason else 'no success')
    return f'seed {rollout.seed}: attempt scores [{"; ".join(attempts)}] -> {end}'


def _clip(text: str, limit: int) -> str:
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _clip_code(code: str) -> str:
    if len(code) <= MAX_CODE_CHARS:
        return code
    return code[:MAX_CODE_CHARS] + '\n# ... (truncated)\n'


def usable_images(frames: list[bytes]) -> list[bytes]:
    """PNG frames small enough to send, at most MAX_IMAGES (the first ones: the request orders them)."""
    return [f for f in frames if f.startswith(PNG_MAGIC) and len(f) <= MAX_IMAGE_BYTES][:MAX_IMAGES]


def build_prompt(request: ImprovementRequest, images: bool = True) -> PromptParts:
    """The task, the contract, the best code with its results, recent results, peers' ideas, key frames."""
    frames = usable_images(request.key_frames_png) if images else []
    sections = [f'# Task\n{describe_task(request.task)}']
    contract = (request.contract.strip()
                or 'class Policy with reset(context), act(observation), on_attempt_failed(report)')
    sections.append(f'# Policy contract\n{contract}\n\nAllowed imports: '
                    f'{", ".join(sorted(allowed_imports(request.task)))}')
    if request.best_code:
        head = '# Current best policy'
        if request.best is not None:
            head += f'\n{summarise(request.best, rollouts=True)}'
        sections.append(f'{head}\n```python\n{_clip_code(request.best_code).rstrip()}\n```')
    else:
        sections.append('# Current best policy\nNone yet: write the first policy from scratch.')
    if request.history:
        recent = request.history[-MAX_HISTORY:]
        best_id = request.best.node_id if request.best is not None else None
        # Attempt by attempt for the newest result only (the best's are above): the prompt stays bounded.
        lines = '\n'.join(f'- {summarise(s, rollouts=s is recent[-1] and s.node_id != best_id)}'
                          for s in recent)
        sections.append(f'# Your recent results (newest last)\n{lines}')
    if request.peer_best:
        lines = '\n'.join(f'- {summarise(s)}' for s in request.peer_best[:MAX_PEERS])
        sections.append(f'# Other agents\' best ideas (you may reuse one: name it as PARENT)\n{lines}')
    for node_id, code in list(request.peer_code.items())[:MAX_PEER_CODE]:
        sections.append(f'# Peer code of node {node_id}\n```python\n{_clip_code(code).rstrip()}\n```')
    if frames:
        sections.append(f'# Key frames\nThe {len(frames)} image(s) attached are camera frames from failed '
                        'attempts of the current best policy, in the order the agent chose them.')
    sections.append(f'# Round {request.round}\nPropose one improvement that addresses the most common '
                    'failure. Reply in the required format.')
    return PromptParts(system=SYSTEM_PROMPT, user='\n\n'.join(sections), images_png=frames)


def repair_text(reason: str) -> str:
    return REPAIR_TEMPLATE.format(reason=reason)


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode('ascii')


def openai_messages(parts: PromptParts) -> list[dict]:
    """Chat Completions messages: a system message, then a user message of text and image_url parts."""
    if parts.images_png:
        content: str | list[dict] = [{'type': 'text', 'text': parts.user}] + [
            {'type': 'image_url', 'image_url': {'url': f'data:image/png;base64,{_b64(png)}'}}
            for png in parts.images_png]
    else:
        content = parts.user   # plain string: the most widely accepted form among compatible servers
    return [{'role': 'system', 'content': parts.system}, {'role': 'user', 'content': content}]


def anthropic_messages(parts: PromptParts) -> list[dict]:
    """Messages API user turn (the system text goes in the top-level `system` parameter): images first,
    then the text, as Anthropic's vision guide recommends."""
    content = [{'type': 'image', 'source': {'type': 'base64', 'media_type': 'image/png', 'data': _b64(png)}}
               for png in parts.images_png]
    content.append({'type': 'text', 'text': parts.user})
    return [{'role': 'user', 'content': content}]


def without_images(messages: list[dict]) -> list[dict]:
    """A copy of wire messages with image payloads replaced by their size: for transcripts and logs."""
    def strip(part):
        if isinstance(part, dict):
            if part.get('type') == 'image_url':
                size = len(part['image_url']['url'])
                return {'type': 'image_url', 'image_url': {'url': f'<png data url, {size} chars>'}}
            if part.get('type') == 'image':
                size = len(part['source']['data'])
                return {'type': 'image', 'source': {'type': 'base64', 'data': f'<png, {size} chars>'}}
        return part
    out = []
    for message in messages:
        content = message.get('content')
        if isinstance(content, list):
            content = [strip(p) for p in content]
        out.append({**message, 'content': content})
    return out
