"""Agentic LLM backends: one agent with the cell's tools, in a multi-turn loop per session.

A session gives the model the experiment's tools (`cell_tools.tool_specs`: the same ones `enpire mcp`
serves) and lets it work: read trials, look at frames, propose, test, keep or discard, until it ends its
turn, the turn limit, the budget or the team stops it. Each tool call goes through the toolbox (the
permission gate); a malformed call (unknown tool, arguments that are not JSON or do not fit) is answered
with the reason as the tool's result, so the model can correct it; a refusal by the model ends the
session. Tokens are charged after every model response from the API's usage fields, so a session's
count is exact however many turns it takes.

- `OpenAIToolAgent`: the Responses API (`client.responses.create`, function tools, `function_call` /
  `function_call_output` items, images as `input_image` data URLs in the output), real `openai` SDK.
- `AnthropicToolAgent`: the Messages API with tool use (`tool_use` / `tool_result` blocks, images as
  base64 image blocks), real `anthropic` SDK.
Both reuse the chat backends' key handling and error classification (rate limits retried by the SDK,
then a BackendError the team loop backs off on).
"""
from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from enpire_agents.backends.anthropic_backend import AnthropicBackend
from enpire_agents.backends.llm_common import BackendError, classify_sdk_error, redact
from enpire_agents.backends.openai_backend import OpenAIBackend
from enpire_agents.backends.prompting import MAX_IMAGES, SYSTEM_PROMPT, describe_task
from enpire_agents.cell_tools import CellToolbox, ToolResult, tool_specs
from enpire_rollout.policy_runtime import allowed_imports

log = logging.getLogger('enpire_agents.backends')


class ToolCall(BaseModel):
    call_id: str
    name: str
    arguments: Any                    # JSON text (OpenAI) or an object (Anthropic), as the API sent it


class Turn(BaseModel):
    """One model response: its tool calls, text, refusal, usage and the raw items to send back."""
    calls: list[ToolCall] = Field(default_factory=list)
    text: str = ''
    refusal: str = ''
    tokens_in: int = 0
    tokens_out: int = 0
    stop_reason: str | None = None
    echo: list[dict] = Field(default_factory=list)


def session_prompt(tools: CellToolbox, number: int) -> tuple[str, str]:
    """(system, first user message) of a session."""
    from enpire_agents.backends.prompting import contract_text
    sandbox = SYSTEM_PROMPT.split('\n\nReply in this format')[0]
    system = (f'{sandbox}\n\n{tools.instructions()}\n\nWork with the tools only: a policy reaches the cell '
              'through propose_policy then run_trial. End your turn (no tool call) when this session\'s idea '
              'is tested and kept or discarded.')
    user = (f'# Task\n{describe_task(tools.config.task)}\n\n# Policy contract\n{contract_text()}\n\nAllowed '
            f'imports: {", ".join(sorted(allowed_imports(tools.config.task)))}\n\n# Session {number}\n'
            'Start with tree and '
            'budget; look at failed trials of the best node (get_trial shows frames), then propose and test '
            'one idea.')
    return system, user


class ToolLoop:
    """The multi-turn loop; a subclass supplies the wire format (`_open`, `_turn`, `_extend`)."""

    tool_driven = True
    max_turns = 24

    def session(self, tools: CellToolbox, number: int, stop: Callable[[], bool] = lambda: False) -> str:
        system, user = session_prompt(tools, number)
        specs = tool_specs(tools)
        state = self._open(user, specs)
        client, sdk = self._client(), self._sdk()
        for turn_no in range(1, self.max_turns + 1):
            if stop():
                return f'stopped by the team after {turn_no - 1} turn(s)'
            started = time.monotonic()
            try:
                turn = self._turn(client, system, state, specs)
            except sdk.APIError as exc:
                raise classify_sdk_error(exc, sdk, self.name, self._secret()) from None
            tools.spend_tokens(turn.tokens_in, turn.tokens_out)
            self._trace(tools.agent, number, turn_no, turn, time.monotonic() - started)
            if turn.refusal:
                return f'the model refused: {turn.refusal[:200]}'
            if not turn.calls:
                return f'the model ended the session after {turn_no} turn(s)'
            results = [(call, tools.call(call.name, call.arguments)) for call in turn.calls]
            state = self._extend(state, turn, results)
        return f'turn limit ({self.max_turns}) reached'

    def _trace(self, agent: str, number: int, turn_no: int, turn: Turn, latency_s: float) -> None:
        """One JSON line per turn (tool names, usage, latency; no prompt text, no key) when recording."""
        if getattr(self, 'transcript_path', None) is None:
            return
        record = {'time': time.time(), 'backend': self.name, 'agent_id': agent, 'session': number,
                  'turn': turn_no, 'calls': [c.name for c in turn.calls], 'refusal': turn.refusal,
                  'stop_reason': turn.stop_reason, 'tokens_in': turn.tokens_in, 'tokens_out': turn.tokens_out,
                  'latency_s': round(latency_s, 3)}
        self.transcript_path.parent.mkdir(parents=True, exist_ok=True)
        with self.transcript_path.open('a', encoding='utf-8') as out:
            out.write(redact(json.dumps(record), self._secret()) + '\n')

    def propose(self, request):
        raise BackendError('request', f'{self.name} is tool-driven: the team runs it through sessions',
                           backend=self.name)


def _png_b64(png: bytes) -> str:
    return base64.b64encode(png).decode('ascii')


class OpenAIToolAgent(ToolLoop, OpenAIBackend):
    """OpenAI Responses API with function tools."""
    provider = 'openai-tools'

    def _open(self, user: str, specs: list[dict]) -> list[dict]:
        self._tools = [{'type': 'function', 'name': s['name'], 'description': s['description'],
                        'parameters': s['schema'], 'strict': False} for s in specs]
        return [{'role': 'user', 'content': [{'type': 'input_text', 'text': user}]}]

    def _turn(self, client: Any, system: str, items: list[dict], specs: list[dict]) -> Turn:
        response = client.responses.create(model=self.model, instructions=system, input=items,
                                           tools=self._tools, max_output_tokens=self.max_output_tokens,
                                           store=False, **self._sampling())
        calls, texts, refusals = [], [], []
        for item in response.output or []:
            if item.type == 'function_call':
                calls.append(ToolCall(call_id=item.call_id, name=item.name, arguments=item.arguments))
            elif item.type == 'message':
                for part in item.content or []:
                    if part.type == 'output_text':
                        texts.append(part.text)
                    elif part.type == 'refusal':
                        refusals.append(part.refusal)
        usage = response.usage
        return Turn(calls=calls, text='\n'.join(texts), refusal='\n'.join(refusals),
                    tokens_in=int(getattr(usage, 'input_tokens', 0) or 0),
                    tokens_out=int(getattr(usage, 'output_tokens', 0) or 0), stop_reason=response.status,
                    echo=_echo_items(calls, texts))

    def _extend(self, items: list[dict], turn: Turn,
                results: list[tuple[ToolCall, ToolResult]]) -> list[dict]:
        items = items + turn.echo
        for call, result in results:
            output: str | list[dict] = result.text if result.ok else f'ERROR: {result.text}'
            if result.images_png and self.images:
                output = [{'type': 'input_text', 'text': output}] + [
                    {'type': 'input_image', 'image_url': f'data:image/png;base64,{_png_b64(png)}'}
                    for png in result.images_png[:MAX_IMAGES]]
            items.append({'type': 'function_call_output', 'call_id': call.call_id, 'output': output})
        return items


def _echo_items(calls: list[ToolCall], texts: list[str]) -> list[dict]:
    """The turn as input items for the next request, without server-side ids (`store=False` keeps none;
    reasoning items are left out, as they cannot be sent back unstored without their encrypted content)."""
    items: list[dict] = [{'role': 'assistant', 'content': text} for text in texts if text]
    return items + [{'type': 'function_call', 'call_id': c.call_id, 'name': c.name, 'arguments': c.arguments}
                    for c in calls]


class AnthropicToolAgent(ToolLoop, AnthropicBackend):
    """Anthropic Messages API with tool use."""
    provider = 'anthropic-tools'

    def _open(self, user: str, specs: list[dict]) -> list[dict]:
        self._tools = [{'name': s['name'], 'description': s['description'], 'input_schema': s['schema']}
                       for s in specs]
        return [{'role': 'user', 'content': user}]

    def _turn(self, client: Any, system: str, messages: list[dict], specs: list[dict]) -> Turn:
        response = client.messages.create(model=self.model, max_tokens=self.max_output_tokens, system=system,
                                          messages=messages, tools=self._tools)
        calls = [ToolCall(call_id=b.id, name=b.name, arguments=b.input) for b in response.content
                 if b.type == 'tool_use']
        text = '\n'.join(b.text for b in response.content if b.type == 'text')
        usage = response.usage
        tokens_in = sum(int(getattr(usage, field, 0) or 0) for field in
                        ('input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'))
        return Turn(calls=calls, text=text, tokens_in=tokens_in, stop_reason=response.stop_reason,
                    refusal=(text or 'stop_reason refusal') if response.stop_reason == 'refusal' else '',
                    tokens_out=int(getattr(usage, 'output_tokens', 0) or 0),
                    echo=[b.model_dump(exclude_none=True) for b in response.content])

    def _extend(self, messages: list[dict], turn: Turn,
                results: list[tuple[ToolCall, ToolResult]]) -> list[dict]:
        blocks = []
        for call, result in results:
            content: list[dict] = [{'type': 'text', 'text': result.text}]
            if self.images:
                content += [{'type': 'image', 'source': {'type': 'base64', 'media_type': 'image/png',
                                                         'data': _png_b64(png)}}
                            for png in result.images_png[:MAX_IMAGES]]
            blocks.append({'type': 'tool_result', 'tool_use_id': call.call_id, 'content': content,
                           'is_error': not result.ok})
        return messages + [{'role': 'assistant', 'content': turn.echo}, {'role': 'user', 'content': blocks}]
