"""OpenAI Chat Completions backends: OpenAI itself, and any OpenAI-compatible endpoint by base URL.

Uses the official `openai` SDK (imported on first use): its client retries 408/409/429/5xx and
timeouts up to `max_retries` times, honouring `retry-after`; what is left after that becomes a
BackendError. Token usage is the API's `usage.prompt_tokens` / `usage.completion_tokens`.

    OpenAIBackend('gpt-5.1')                                               # key from OPENAI_API_KEY
    OpenAICompatibleBackend('kimi-k2.5', base_url='https://api.moonshot.ai/v1',
                            api_key_env='MOONSHOT_API_KEY', name='kimi')
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from enpire_agents.backends.llm_common import BackendError, ChatBackend, Completion, usage_fields
from enpire_agents.backends.prompting import PromptParts, openai_messages


def _import_sdk() -> Any:
    try:
        import openai
    except ImportError as err:   # a lab machine without python3-openai: say so at use, not at import
        raise BackendError('request', 'the openai package is not installed (pip install openai)') from err
    return openai


class OpenAIBackend(ChatBackend):
    provider = 'openai'

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = 'OPENAI_API_KEY',
                 timeout: float = 120.0, max_retries: int = 2, *, name: str | None = None,
                 images: bool = True, max_output_tokens: int = 8192,
                 max_tokens_param: Literal['max_completion_tokens', 'max_tokens'] = 'max_completion_tokens',
                 transcript_path: str | Path | None = None, temperature: float | None = None):
        super().__init__(model=model, base_url=base_url, api_key_env=api_key_env, timeout=timeout,
                         max_retries=max_retries, name=name, images=images,
                         max_output_tokens=max_output_tokens, transcript_path=transcript_path,
                         temperature=temperature)
        # OpenAI's current models take max_completion_tokens (and refuse max_tokens on reasoning
        # models); most compatible servers only know the older max_tokens.
        self.max_tokens_param = max_tokens_param

    def _sdk(self) -> Any:
        return _import_sdk()

    def _make_client(self, api_key: str) -> Any:
        openai = self._sdk()
        kwargs: dict[str, Any] = {'api_key': api_key, 'timeout': self.timeout,
                                  'max_retries': self.max_retries}
        if self.base_url:
            kwargs['base_url'] = self.base_url
        return openai.OpenAI(**kwargs)

    def _initial_messages(self, parts: PromptParts) -> list[dict]:
        return openai_messages(parts)

    def _complete(self, client: Any, system: str, messages: list[dict]) -> Completion:
        # `system` is already the first message in the Chat Completions layout.
        response = client.chat.completions.create(
            model=self.model, messages=messages, **{self.max_tokens_param: self.max_output_tokens},
            **self._sampling())
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or '') if choice is not None and choice.message is not None else ''
        usage = response.usage
        return Completion(text=text, usage=usage_fields(usage),
                          tokens_in=int(getattr(usage, 'prompt_tokens', 0) or 0),
                          tokens_out=int(getattr(usage, 'completion_tokens', 0) or 0),
                          finish_reason=getattr(choice, 'finish_reason', None))


class OpenAICompatibleBackend(OpenAIBackend):
    """An OpenAI-compatible Chat Completions server (Kimi/Moonshot, vLLM, DeepSeek, ...): the base URL
    is required; images are off by default since many such models are text-only."""
    provider = 'openai-compatible'

    def __init__(self, model: str, base_url: str, api_key_env: str = 'OPENAI_API_KEY', timeout: float = 120.0,
                 max_retries: int = 2, *, name: str | None = None, images: bool = False,
                 max_output_tokens: int = 8192,
                 max_tokens_param: Literal['max_completion_tokens', 'max_tokens'] = 'max_tokens',
                 transcript_path: str | Path | None = None, temperature: float | None = None):
        if not base_url:
            raise ValueError('an OpenAI-compatible backend needs its base_url')
        super().__init__(model, base_url, api_key_env, timeout, max_retries, name=name, images=images,
                         max_output_tokens=max_output_tokens, max_tokens_param=max_tokens_param,
                         transcript_path=transcript_path, temperature=temperature)
