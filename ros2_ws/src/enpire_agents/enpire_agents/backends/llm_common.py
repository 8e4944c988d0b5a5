"""What the LLM backends share: the error type, key handling, reply parsing and the propose/repair loop.

A subclass only knows its wire format: how to lay out the prompt (`_initial_messages`), how to make
one call with its SDK (`_complete`) and which SDK module its exceptions come from (`_sdk`). The SDKs
are imported lazily by the subclasses so `enpire_agents` imports on machines without them.

API keys are read from the environment when the client is first built and handed to the SDK only:
they are never an attribute of the backend, never logged, never written to a transcript (and every
string the backend writes is scrubbed of the key in case a server echoes it).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from enpire_agents.backends.base import ImprovementRequest, Proposal
from enpire_agents.backends.code_check import CheckResult, check_reply
from enpire_agents.backends.prompting import PromptParts, build_prompt, repair_text, without_images

log = logging.getLogger('enpire_agents.backends')

ErrorKind = Literal['rate_limited', 'timeout', 'malformed', 'auth', 'server', 'request', 'transcript']
# Kinds worth trying again later with the same request (the SDK has already retried within its budget).
RETRYABLE_KINDS = frozenset({'rate_limited', 'timeout', 'server'})


class BackendFailure(BaseModel):
    """A BackendError as a value: for the agent loop's records and the experiment report."""
    backend: str
    kind: ErrorKind
    message: str
    status: int | None = None
    retry_after_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0


class BackendError(Exception):
    """A proposal could not be had. `kind` tells the agent loop what to do:
    rate_limited / timeout / server: back off and retry later (see `retry_after_s`);
    auth: stop using this backend (missing or refused key); transcript: a replayed run asked for an
    exchange its transcript does not hold (stop too); malformed: the model's code failed the check
    twice (the repair round included), count the tokens and try another round; request: the API refused
    the request itself (e.g. context too long, unknown model), do not resend it as is.
    Tokens already spent (a malformed reply, a first round before a failed repair) are carried so token
    budgets stay exact."""

    def __init__(self, kind: ErrorKind, message: str, *, backend: str = '', status: int | None = None,
                 retry_after_s: float | None = None, tokens_in: int = 0, tokens_out: int = 0):
        super().__init__(f'{kind}: {message}')
        self.kind = kind
        self.message = message
        self.backend = backend
        self.status = status
        self.retry_after_s = retry_after_s
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out

    def __reduce__(self):   # keyword fields survive pickling (agents may run in worker processes)
        return _rebuild_error, (self.record().model_dump(),)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def record(self) -> BackendFailure:
        return BackendFailure(backend=self.backend, kind=self.kind, message=self.message, status=self.status,
                              retry_after_s=self.retry_after_s, tokens_in=self.tokens_in,
                              tokens_out=self.tokens_out)


def _rebuild_error(fields: dict) -> BackendError:
    return BackendError(fields.pop('kind'), fields.pop('message'), **fields)


class Completion(BaseModel):
    """One model reply, with the usage the API reported for it."""
    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None = None
    usage: dict[str, int] = {}          # the API's usage fields as reported (for transcripts)


def usage_fields(usage: Any) -> dict[str, int]:
    """The integer fields of an SDK usage object, nested details flattened as `a.b`."""
    if usage is None:
        return {}
    data = usage.model_dump() if hasattr(usage, 'model_dump') else dict(getattr(usage, '__dict__', {}))
    flat: dict[str, int] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f'{prefix}.{key}' if prefix else str(key), inner)
        elif isinstance(value, int) and not isinstance(value, bool):
            flat[prefix] = value

    walk('', data)
    return flat


def api_key_from_env(env_name: str) -> str:
    key = os.environ.get(env_name, '').strip()
    if not key:
        raise BackendError('auth', f'environment variable {env_name} is not set')
    return key


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, '[redacted]') if secret else text


def _clip(text: str, limit: int = 400) -> str:
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, 'headers', None) or {}
    for header, divisor in (('retry-after-ms', 1000.0), ('retry-after', 1.0)):
        try:
            return float(headers.get(header)) / divisor
        except (TypeError, ValueError):
            continue
    return None


def classify_sdk_error(exc: Exception, sdk: Any, backend: str = '',
                       secret: str | None = None) -> BackendError:
    """Map an `openai` / `anthropic` SDK exception (the two share class names) onto a BackendError."""
    status = getattr(exc, 'status_code', None)
    retry_after = None
    if isinstance(exc, sdk.APIResponseValidationError):
        kind: ErrorKind = 'malformed'
    elif isinstance(exc, sdk.APITimeoutError):
        kind = 'timeout'
    elif isinstance(exc, sdk.RateLimitError):
        kind, retry_after = 'rate_limited', _retry_after(getattr(exc, 'response', None))
    elif isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
        kind = 'auth'
    elif isinstance(exc, sdk.APIStatusError):
        kind = 'timeout' if status == 408 else 'server' if (status or 500) >= 500 else 'request'
    elif isinstance(exc, sdk.APIConnectionError):
        kind = 'server'        # unreachable endpoint: the agent loop treats it like an outage
    else:
        kind = 'server'
    message = redact(_clip(f'{type(exc).__name__}: {exc}'), secret)
    return BackendError(kind, message, backend=backend, status=status, retry_after_s=retry_after)


_HYPOTHESIS = re.compile(r'^[\s>*#_-]*hypothesis[*_]*\s*:\s*[*_]*(.+?)[*_]*\s*$',
                         re.IGNORECASE | re.MULTILINE)
_PARENT = re.compile(r'^[\s>*#_-]*parent[*_]*\s*:\s*[*_`]*([\w./:-]+)', re.IGNORECASE | re.MULTILINE)
_FENCED = re.compile(r'```.*?(?:```|\Z)', re.DOTALL)


class ParsedReply(BaseModel):
    hypothesis: str
    parent: str | None
    check: CheckResult


def known_nodes(request: ImprovementRequest) -> set[str]:
    nodes = {s.node_id for s in request.history + request.peer_best}
    nodes.update(request.peer_code)
    if request.best is not None:
        nodes.add(request.best.node_id)
    return nodes


def parse_reply(text: str, request: ImprovementRequest) -> ParsedReply:
    """The hypothesis line, the parent (only a node the request named), and the checked code."""
    prose = _FENCED.sub('', text)
    match = _HYPOTHESIS.search(prose)
    if match:
        hypothesis = match.group(1)
    else:   # no HYPOTHESIS line: the first line of prose stands in for it
        lines = [ln.strip(' #*>-') for ln in prose.splitlines() if ln.strip(' #*>-')]
        hypothesis = lines[0] if lines else 'revision proposed by the model'
    default_parent = request.best.node_id if request.best is not None else None
    parent_match = _PARENT.search(prose)
    parent = parent_match.group(1) if parent_match else None
    if parent not in known_nodes(request):
        parent = default_parent
    return ParsedReply(hypothesis=_clip(hypothesis, 200), parent=parent,
                       check=check_reply(text, request.task))


class ChatBackend:
    """propose(): prompt -> reply -> check; a failed check gets one repair round with the reason."""

    provider = 'llm'

    def __init__(self, *, model: str, base_url: str | None, api_key_env: str, timeout: float,
                 max_retries: int, name: str | None = None, images: bool = True,
                 max_output_tokens: int = 8192, transcript_path: str | Path | None = None,
                 temperature: float | None = None):
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env      # the variable's name only; its value is never kept here
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.name = name or f'{self.provider}:{model}'
        self.images = images
        self.max_output_tokens = int(max_output_tokens)
        self.transcript_path = Path(transcript_path) if transcript_path else None
        # None leaves the API's default: reasoning models refuse any other temperature.
        self.temperature = temperature
        self._client_obj: Any = None
        self._lock = threading.Lock()
        self.recorder: Any = None           # a transcript writer (`backends.transcript.record`)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(name={self.name!r}, model={self.model!r}, '
                f'base_url={self.base_url!r}, api_key_env={self.api_key_env!r})')

    __str__ = __repr__

    # -- what a wire format supplies ------------------------------------------------------------------
    def _sdk(self) -> Any:
        raise NotImplementedError

    def _make_client(self, api_key: str) -> Any:
        raise NotImplementedError

    def _initial_messages(self, parts: PromptParts) -> list[dict]:
        raise NotImplementedError

    def _complete(self, client: Any, system: str, messages: list[dict]) -> Completion:
        raise NotImplementedError

    def _sampling(self) -> dict[str, Any]:
        return {} if self.temperature is None else {'temperature': float(self.temperature)}

    # -- shared ----------------------------------------------------------------------------------------
    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                self._client_obj = self._make_client(api_key_from_env(self.api_key_env))
            return self._client_obj

    def _secret(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _call(self, system: str, messages: list[dict]) -> Completion:
        try:
            client = self._client()
        except BackendError as err:
            err.backend = self.name
            raise
        sdk = self._sdk()
        try:
            return self._complete(client, system, messages)
        except sdk.APIError as exc:
            raise classify_sdk_error(exc, sdk, self.name, self._secret()) from None

    def propose(self, request: ImprovementRequest) -> Proposal:
        parts = build_prompt(request, images=self.images)
        messages = self._initial_messages(parts)
        tokens_in = tokens_out = 0
        reason = ''
        for attempt in (1, 2):       # the first reply, then at most one repair round
            started = time.monotonic()
            try:
                completion = self._call(parts.system, messages)
            except BackendError as err:
                err.tokens_in += tokens_in
                err.tokens_out += tokens_out
                self._write(request, attempt, messages, None, None, err)
                self._record(parts.system, request, attempt, messages, None, err, started)
                log.warning('%s: %s (agent %s, round %d)', self.name, err.kind, request.agent_id,
                            request.round)
                raise
            tokens_in += completion.tokens_in
            tokens_out += completion.tokens_out
            parsed = parse_reply(completion.text, request)
            self._write(request, attempt, messages, completion, parsed.check, None)
            self._record(parts.system, request, attempt, messages, completion, None, started)
            log.info('%s: reply in %.1f s, %d+%d tokens, check %s', self.name, time.monotonic() - started,
                     completion.tokens_in, completion.tokens_out, parsed.check.kind)
            if parsed.check.ok:
                return Proposal(hypothesis=parsed.hypothesis, code=parsed.check.code, parent=parsed.parent,
                                tokens_in=tokens_in, tokens_out=tokens_out)
            reason = parsed.check.reason
            if completion.finish_reason in ('length', 'max_tokens'):
                reason += ' (the reply was cut off at the output token limit: keep the code shorter)'
            messages = messages + [
                {'role': 'assistant', 'content': completion.text.strip() or '(empty reply)'},
                {'role': 'user', 'content': repair_text(reason)},
            ]
        raise BackendError('malformed', f'no usable policy after a repair round: {reason}', backend=self.name,
                           tokens_in=tokens_in, tokens_out=tokens_out)

    def _record(self, system: str, request: ImprovementRequest, attempt: int, messages: list[dict],
                completion: Completion | None, error: BackendError | None, started: float) -> None:
        if self.recorder is not None:
            self.recorder.exchange(system, request, attempt, messages, completion, error,
                                   latency_s=time.monotonic() - started)

    def _write(self, request: ImprovementRequest, attempt: int, messages: list[dict],
               completion: Completion | None, check: CheckResult | None, error: BackendError | None) -> None:
        """Append one exchange to the transcript (JSON lines), images replaced by their size, key scrubbed."""
        if self.transcript_path is None:
            return
        record = {
            'time': time.time(), 'backend': self.name, 'model': self.model, 'agent_id': request.agent_id,
            'round': request.round, 'attempt': attempt, 'messages': without_images(messages),
            'reply': completion.text if completion else None,
            'tokens_in': completion.tokens_in if completion else 0,
            'tokens_out': completion.tokens_out if completion else 0,
            'check': {'kind': check.kind, 'reason': check.reason} if check else None,
            'error': error.record().model_dump() if error else None,
        }
        line = redact(json.dumps(record), self._secret())
        self.transcript_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.transcript_path.open('a', encoding='utf-8') as out:
            out.write(line + '\n')
