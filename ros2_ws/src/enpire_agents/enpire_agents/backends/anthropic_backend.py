"""Anthropic Messages API backend, through the official `anthropic` SDK (imported on first use).

The SDK retries 408/409/429/5xx and timeouts up to `max_retries` times, honouring `retry-after`;
what is left becomes a BackendError. Token usage is the API's `usage.input_tokens` /
`usage.output_tokens`. The key is passed explicitly, which also stops the SDK from looking for
profiles or other credentials on disk.

    AnthropicBackend('claude-sonnet-4-5')                                  # key from ANTHROPIC_API_KEY
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from enpire_agents.backends.llm_common import BackendError, ChatBackend, Completion, usage_fields
from enpire_agents.backends.prompting import PromptParts, anthropic_messages


def _import_sdk() -> Any:
    try:
        import anthropic
    except ImportError as err:   # a lab machine without python3-anthropic: say so at use, not at import
        raise BackendError('request', 'the anthropic package is not installed (pip install anthropic)') \
            from err
    return anthropic


class AnthropicBackend(ChatBackend):
    provider = 'anthropic'

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = 'ANTHROPIC_API_KEY',
                 timeout: float = 120.0, max_retries: int = 2, *, name: str | None = None,
                 images: bool = True, max_output_tokens: int = 8192,
                 transcript_path: str | Path | None = None, temperature: float | None = None):
        # `temperature` is accepted so every backend takes the same agent spec, but not sent: the
        # Messages API this SDK speaks (anthropic 2.x) has no sampling temperature parameter.
        super().__init__(model=model, base_url=base_url, api_key_env=api_key_env, timeout=timeout,
                         max_retries=max_retries, name=name, images=images,
                         max_output_tokens=max_output_tokens, transcript_path=transcript_path,
                         temperature=temperature)

    def _sdk(self) -> Any:
        return _import_sdk()

    def _make_client(self, api_key: str) -> Any:
        anthropic = self._sdk()
        kwargs: dict[str, Any] = {'api_key': api_key, 'timeout': self.timeout,
                                  'max_retries': self.max_retries}
        if self.base_url:
            kwargs['base_url'] = self.base_url
        return anthropic.Anthropic(**kwargs)

    def _initial_messages(self, parts: PromptParts) -> list[dict]:
        return anthropic_messages(parts)

    def _complete(self, client: Any, system: str, messages: list[dict]) -> Completion:
        response = client.messages.create(model=self.model, max_tokens=self.max_output_tokens, system=system,
                                          messages=messages)
        # Replies may hold non-text blocks (thinking, tool use); the policy is in the text blocks.
        text = '\n'.join(block.text for block in response.content if getattr(block, 'type', None) == 'text')
        usage = response.usage
        # input_tokens excludes prompt-cache reads and writes; all three together are what was sent.
        tokens_in = sum(int(getattr(usage, field, 0) or 0) for field in
                        ('input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'))
        return Completion(text=text, tokens_in=tokens_in, usage=usage_fields(usage),
                          tokens_out=int(getattr(usage, 'output_tokens', 0) or 0),
                          finish_reason=response.stop_reason)
