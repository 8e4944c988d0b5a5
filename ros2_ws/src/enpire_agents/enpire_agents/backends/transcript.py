"""Transcripts of LLM exchanges: record a run per agent, replay it later with no key and no network.

Recording: `record(backend, path)` attaches a writer to an LLM backend (any `ChatBackend`: OpenAI,
Anthropic, OpenAI-compatible). Each exchange (one API call: a first reply or a repair round) becomes
one JSON line: who asked (agent, round, attempt), the request's digest (sha256 of the system prompt
and the messages, images left out), the reply text, the API's usage fields and finish reason, the
latency, or the error as a value. No keys, no headers, no prompt text: the digest stands for it.

Replaying: `ReplayBackend(path)` is a `ChatBackend` whose calls return the recorded replies in order,
so the reply parsing, the code check and the repair round run as they did, and the tokens counted
are the API's recorded usage. By default it also waits each exchange's recorded latency, so a
replayed run's wall-clock curve stays comparable. A call for another agent, round or attempt than
the next record, or past the last one, raises a BackendError of kind 'transcript' (the team stops
that agent). A request whose digest differs from the record is served and counted in
`prompt_mismatches` -- a replay's cells do not repeat the recorded trial outcomes, and the prompts
quote them -- unless `strict=True`, which makes it a 'transcript' error too.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from enpire_agents.backends.base import ImprovementRequest, Proposal
from enpire_agents.backends.llm_common import BackendError, BackendFailure, ChatBackend, Completion, redact
from enpire_agents.backends.prompting import PromptParts, anthropic_messages, openai_messages, without_images

FORMAT = 'enpire-transcript-1'


class TranscriptHeader(BaseModel):
    """The first line: which backend and wire format the exchanges came from."""
    format: Literal['enpire-transcript-1'] = FORMAT
    backend: str
    provider: str
    model: str
    images: bool


class Exchange(BaseModel):
    """One API call and what came back."""
    agent_id: str
    round: int
    attempt: int                         # 1: the first reply; 2: the repair round
    request_digest: str
    reply: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    finish_reason: str | None = None
    latency_s: float = 0.0
    error: BackendFailure | None = None


def request_digest(system: str, messages: list[dict]) -> str:
    """sha256 of the system prompt and the messages as sent (images replaced by their size)."""
    text = json.dumps({'system': system, 'messages': without_images(messages)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class TranscriptWriter:
    """Appends a backend's exchanges to a JSONL file (thread-safe; the key scrubbed from every line)."""

    def __init__(self, backend: ChatBackend, path: str | Path):
        self.backend = backend
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        header = TranscriptHeader(backend=backend.name, provider=backend.provider, model=backend.model,
                                  images=backend.images)
        self.path.write_text(self._line(header))

    def _line(self, model: BaseModel) -> str:
        return redact(model.model_dump_json(), self.backend._secret()) + '\n'

    def exchange(self, system: str, request: ImprovementRequest, attempt: int, messages: list[dict],
                 completion: Completion | None, error: BackendError | None, *, latency_s: float) -> None:
        record = Exchange(agent_id=request.agent_id, round=request.round, attempt=attempt,
                          request_digest=request_digest(system, messages),
                          reply=completion.text if completion else None,
                          tokens_in=(completion or error).tokens_in if completion or error else 0,
                          tokens_out=(completion or error).tokens_out if completion or error else 0,
                          usage=completion.usage if completion else {},
                          finish_reason=completion.finish_reason if completion else None,
                          latency_s=round(latency_s, 3), error=error.record() if error else None)
        with self._lock, self.path.open('a', encoding='utf-8') as out:
            out.write(self._line(record))


def record(backend: Any, path: str | Path) -> Any:
    """Attach a transcript writer to an LLM backend (the file is started afresh); returns the backend."""
    if not isinstance(backend, ChatBackend):
        raise TypeError(f'{getattr(backend, "name", type(backend).__name__)} is not an LLM backend; '
                        'only LLM exchanges are recorded')
    backend.recorder = TranscriptWriter(backend, path)
    return backend


def read_transcript(path: str | Path) -> tuple[TranscriptHeader, list[Exchange]]:
    path = Path(path)
    if not path.is_file():
        raise BackendError('transcript', f'no transcript at {path}', backend='replay')
    lines = [ln for ln in path.read_text(encoding='utf-8').splitlines() if ln.strip()]
    try:
        header = TranscriptHeader.model_validate_json(lines[0])
        return header, [Exchange.model_validate_json(ln) for ln in lines[1:]]
    except (IndexError, ValueError) as exc:
        raise BackendError('transcript', f'{path} is not an {FORMAT} transcript: {exc}',
                           backend='replay') from None


class ReplayBackend(ChatBackend):
    """Serves a recorded transcript back in order, offline; its name is the recorded backend's."""

    def __init__(self, path: str | Path, *, strict: bool = False, pace: bool = True):
        self.path = Path(path)
        self.header, self.exchanges = read_transcript(self.path)
        self.provider = self.header.provider
        super().__init__(model=self.header.model, base_url=None, api_key_env='', timeout=0.0, max_retries=0,
                         name=self.header.backend, images=self.header.images)
        self.strict, self.pace = strict, pace
        self.served = 0
        self.prompt_mismatches = 0
        self.stopped: str | None = None          # why the transcript could not serve the run any further
        self._asking = threading.local()

    @property
    def replayed(self) -> bool:
        return True

    def propose(self, request: ImprovementRequest) -> Proposal:
        self._asking.request, self._asking.attempt = request, 0
        return super().propose(request)

    def _initial_messages(self, parts: PromptParts) -> list[dict]:
        return anthropic_messages(parts) if self.provider == 'anthropic' else openai_messages(parts)

    def _call(self, system: str, messages: list[dict]) -> Completion:
        request: ImprovementRequest = self._asking.request
        self._asking.attempt += 1
        where = f'{request.agent_id} round {request.round} attempt {self._asking.attempt}'
        with self._lock:
            if self.served >= len(self.exchanges):
                self._stop(f'transcript {self.path.name} exhausted after {self.served} exchanges at {where}')
            recorded = self.exchanges[self.served]
            if (recorded.agent_id, recorded.round, recorded.attempt) != \
                    (request.agent_id, request.round, self._asking.attempt):
                self._stop(f'replay diverged at {where}: the transcript holds {recorded.agent_id} round '
                           f'{recorded.round} attempt {recorded.attempt} next')
            if recorded.request_digest != request_digest(system, messages):
                if self.strict:
                    self._stop(f'replay diverged at {where}: the request differs from the recorded one')
                self.prompt_mismatches += 1
            self.served += 1
        if self.pace and recorded.latency_s > 0:
            time.sleep(recorded.latency_s)
        if recorded.error is not None:
            e = recorded.error
            raise BackendError(e.kind, e.message, backend=self.name, status=e.status,
                               retry_after_s=e.retry_after_s)
        return Completion(text=recorded.reply or '', tokens_in=recorded.tokens_in,
                          tokens_out=recorded.tokens_out, finish_reason=recorded.finish_reason,
                          usage=recorded.usage)

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        raise BackendError('transcript', reason, backend=self.name)
