"""A loopback HTTP server speaking the OpenAI Chat Completions and Responses and the Anthropic Messages
wire formats.

Test-only. Bound to 127.0.0.1 on an ephemeral port; serves `POST .../chat/completions` (OpenAI and
compatible servers), `POST .../responses` (OpenAI Responses, function tools) and `POST .../v1/messages`
(Anthropic, tool use too) with the real APIs' JSON shapes, `usage` included, and the real error bodies.
Replies follow a script of behaviours (a good policy, no code, forbidden imports, 429 with retry-after,
a slow reply, 500, 401; for agents: tool calls, malformed calls, a refusal), then default to a good
reply. Tool-call arguments may name `{node_id}` / `{trial_id}`: the server fills in the latest such id
it was sent back in a tool result, as a model reading its tool results would.
Every request is recorded (headers, JSON body, what was answered, the usage reported) so tests can
assert what the backend sent.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from pydantic import BaseModel

Api = Literal['openai', 'anthropic', 'responses']
StepKind = Literal['good', 'no_code', 'forbidden', 'rate_limited', 'slow', 'server_error', 'text', 'tools',
                   'refusal']

GOOD_POLICY = '''\
import math

import numpy as np

from enpire_task_pusht.policy_tools import GOAL_POSE, locate_block


class Policy:
    """Push the T from behind its centroid toward the goal, backing off after a failed attempt."""

    def reset(self, context):
        self.standoff = 40.0

    def act(self, observation):
        pose = locate_block(observation)
        if pose is None:
            return tuple(float(v) for v in observation.agent_position)
        x, y, _ = pose
        dx, dy = GOAL_POSE[0] - x, GOAL_POSE[1] - y
        norm = math.hypot(dx, dy) or 1.0
        target = np.array([x - self.standoff * dx / norm, y - self.standoff * dy / norm])
        return float(target[0]), float(target[1])

    def on_attempt_failed(self, report):
        self.standoff = max(20.0, self.standoff - 5.0)
'''

FORBIDDEN_POLICY = '''\
import os


class Policy:
    def reset(self, context):
        os.system('echo escaped')

    def act(self, observation):
        return 256.0, 256.0

    def on_attempt_failed(self, report):
        pass
'''

GOOD_REPLY = ('HYPOTHESIS: push from behind the block toward the goal, shrink the standoff after failures\n'
              'PARENT: {parent}\n\n```python\n' + GOOD_POLICY + '```\n')
NO_CODE_REPLY = 'I would push the block a little harder next time, and approach it from the other side.'
FORBIDDEN_REPLY = 'HYPOTHESIS: log progress to the shell\n```python\n' + FORBIDDEN_POLICY + '```\n'


class Step(BaseModel):
    """One scripted answer."""
    kind: StepKind = 'good'
    text: str | None = None          # the reply text, for 'text' (or to override the others')
    retry_after: str = '1'           # 'rate_limited': the retry-after header's value (seconds)
    delay_s: float = 5.0             # 'slow': how long to wait before answering
    parent: str = 'none'             # 'good': what the PARENT line names
    calls: list[tuple[str, Any]] = []   # 'tools': (tool name, arguments: an object, or raw JSON text)


class RecordedRequest(BaseModel):
    api: Api
    path: str
    headers: dict[str, str]          # lower-cased names
    body: dict[str, Any]
    step: StepKind
    status: int = 200
    tokens_in: int = 0               # the usage this server reported for it
    tokens_out: int = 0

    def texts(self) -> list[str]:
        """Every text the request carried: system prompt and all message text parts."""
        out = []
        system = self.body.get('system')
        if isinstance(system, str):
            out.append(system)
        elif isinstance(system, list):
            out.extend(p.get('text', '') for p in system)
        for message in self.body.get('messages', []):
            content = message.get('content')
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.extend(p['text'] for p in content if p.get('type') == 'text')
        return out

    def images(self) -> list[dict]:
        """The image parts, in the API's own shape (image_url parts or base64 image blocks)."""
        return [p for m in self.body.get('messages', []) if isinstance(m.get('content'), list)
                for p in m['content'] if p.get('type') in ('image_url', 'image')]

    def tool_results(self) -> list[tuple[str, int, bool]]:
        """Every tool result the request sent back: (text, number of images, is_error), in order."""
        out = []
        for item in self.body.get('input', []) if self.api == 'responses' else []:
            if item.get('type') == 'function_call_output':
                output = item['output']
                parts = output if isinstance(output, list) else [{'type': 'input_text', 'text': output}]
                text = ' '.join(p.get('text', '') for p in parts if p['type'] == 'input_text')
                out.append((text, sum(p['type'] == 'input_image' for p in parts), text.startswith('ERROR')))
        for message in self.body.get('messages', []) if self.api == 'anthropic' else []:
            for block in message['content'] if isinstance(message.get('content'), list) else []:
                if block.get('type') == 'tool_result':
                    parts = block['content']
                    out.append((' '.join(p.get('text', '') for p in parts if p['type'] == 'text'),
                                sum(p['type'] == 'image' for p in parts), bool(block.get('is_error'))))
        return out


class FakeLLMServer:
    def __init__(self, expected_key: str | None = None):
        self.expected_key = expected_key       # when set, other keys get the API's 401
        self.requests: list[RecordedRequest] = []
        self._script: list[Step] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(('127.0.0.1', 0), self._handler_class())
        self._httpd.daemon_threads = True      # a slow reply still sleeping must not block shutdown
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # -- control ---------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f'http://127.0.0.1:{self.port}/v1'

    @property
    def anthropic_base_url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def script(self, *steps: str | Step) -> None:
        with self._lock:
            self._script.extend(Step(kind=s) if isinstance(s, str) else s for s in steps)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_step(self) -> Step:
        with self._lock:
            return self._script.pop(0) if self._script else Step()

    # -- HTTP ------------------------------------------------------------------------------------------
    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args) -> None:   # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get('content-length') or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b'{}')
                except json.JSONDecodeError:
                    body = {}
                if self.path.endswith('/chat/completions'):
                    api: Api = 'openai'
                elif self.path.endswith('/responses'):
                    api = 'responses'
                elif self.path.endswith('/v1/messages'):
                    api = 'anthropic'
                else:
                    self._send(404, {'error': {'message': f'no route {self.path}'}}, {})
                    return
                server._answer(self, api, body, len(raw))

            def _send(self, status: int, payload: dict, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header('content-type', 'application/json')
                    self.send_header('content-length', str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up (timeout test): nothing left to answer

        return Handler

    def _authorised(self, api: Api, headers: dict[str, str]) -> bool:
        if self.expected_key is None:
            return True
        bearer = headers.get('authorization') == f'Bearer {self.expected_key}'
        return bearer or (api == 'anthropic' and headers.get('x-api-key') == self.expected_key)

    def _answer(self, handler: Any, api: Api, body: dict, body_len: int) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = RecordedRequest(api=api, path=handler.path, headers=headers, body=body, step='good')
        with self._lock:
            self.requests.append(record)
        request_id = f'req_{uuid.uuid4().hex[:16]}'
        id_header = {'x-request-id' if api != 'anthropic' else 'request-id': request_id}
        if not self._authorised(api, headers):
            record.status = 401
            handler._send(401, _error(api, 401, 'invalid x-api-key' if api == 'anthropic'
                                      else 'Incorrect API key provided.'), id_header)
            return
        step = self._next_step()
        record.step = step.kind
        if step.kind == 'rate_limited':
            record.status = 429
            handler._send(429, _error(api, 429, 'Rate limit reached; retry after the indicated delay.'),
                          {**id_header, 'retry-after': step.retry_after})
            return
        if step.kind == 'server_error':
            record.status = 500
            handler._send(500, _error(api, 500, 'The server had an error while processing your request.'),
                          id_header)
            return
        if step.kind == 'slow':
            self._stopping.wait(step.delay_s)
        if api == 'responses' or step.kind in ('tools', 'refusal'):
            self._answer_agent(handler, api, step, record, body, body_len, id_header)
            return
        text = step.text if step.text is not None else {
            'good': GOOD_REPLY.format(parent=step.parent), 'slow': GOOD_REPLY.format(parent=step.parent),
            'no_code': NO_CODE_REPLY, 'forbidden': FORBIDDEN_REPLY, 'text': ''}[step.kind]
        # Deterministic usage derived from the exchange, so tests can compare the backend's sums.
        record.tokens_in, record.tokens_out = max(1, body_len // 4), max(1, len(text) // 4)
        model = body.get('model', 'unknown')
        payload = (_openai_completion(model, text, record.tokens_in, record.tokens_out) if api == 'openai'
                   else _anthropic_message(model, text, record.tokens_in, record.tokens_out))
        handler._send(200, payload, id_header)


    def _answer_agent(self, handler, api: Api, step: Step, record: RecordedRequest, body: dict, body_len: int,
                      id_header: dict) -> None:
        """A tool-using model's turn: tool calls (ids filled in from the tool results it was sent), a
        refusal, or text that ends the session."""
        known = _latest_ids(record.tool_results())
        calls = [(name, _fill(args, known)) for name, args in step.calls] if step.kind == 'tools' else []
        text = step.text if step.text is not None else 'Tested and kept; ending this session.'
        record.tokens_in = max(1, body_len // 4)
        record.tokens_out = max(1, (len(text) + len(str(calls))) // 4)
        model = body.get('model', 'unknown')
        if api == 'responses':
            payload = _responses_turn(model, calls, text, step.kind == 'refusal', record.tokens_in,
                                      record.tokens_out)
        else:
            payload = _anthropic_turn(model, calls, text, step.kind == 'refusal', record.tokens_in,
                                      record.tokens_out)
        handler._send(200, payload, id_header)


def _latest_ids(results: list[tuple[str, int, bool]]) -> dict[str, str]:
    import re
    known: dict[str, str] = {}
    for text, _, _ in results:
        for key in ('node_id', 'trial_id'):
            found = re.findall(rf'"{key}": "([^"]+)"', text)
            if found:
                known[key] = found[0]
    return known


def _fill(args: Any, known: dict[str, str]) -> Any:
    if isinstance(args, str):
        for key, value in known.items():
            args = args.replace('{' + key + '}', value)
        return args
    if isinstance(args, dict):
        return {k: _fill(v, known) for k, v in args.items()}
    if isinstance(args, list):
        return [_fill(v, known) for v in args]
    return args


def _responses_turn(model: str, calls: list, text: str, refusal: bool, tokens_in: int,
                    tokens_out: int) -> dict:
    output: list[dict] = [
        {'type': 'function_call', 'id': f'fc_{uuid.uuid4().hex[:20]}',
         'call_id': f'call_{uuid.uuid4().hex[:20]}', 'name': name,
         'arguments': args if isinstance(args, str) else json.dumps(args), 'status': 'completed'}
        for name, args in calls]
    if not calls:
        part = ({'type': 'refusal', 'refusal': text} if refusal else
                {'type': 'output_text', 'text': text, 'annotations': [], 'logprobs': []})
        output.append({'type': 'message', 'id': f'msg_{uuid.uuid4().hex[:20]}', 'role': 'assistant',
                       'status': 'completed', 'content': [part]})
    return {
        'id': f'resp_{uuid.uuid4().hex[:24]}', 'object': 'response', 'created_at': int(time.time()),
        'status': 'completed', 'error': None, 'incomplete_details': None, 'instructions': None,
        'model': model,
        'output': output, 'parallel_tool_calls': True, 'tool_choice': 'auto', 'tools': [], 'temperature': 1.0,
        'top_p': 1.0, 'metadata': {}, 'store': False, 'text': {'format': {'type': 'text'}},
        'usage': {'input_tokens': tokens_in, 'input_tokens_details': {'cached_tokens': 0},
                  'output_tokens': tokens_out, 'output_tokens_details': {'reasoning_tokens': 0},
                  'total_tokens': tokens_in + tokens_out},
    }


def _anthropic_turn(model: str, calls: list, text: str, refusal: bool, tokens_in: int,
                    tokens_out: int) -> dict:
    content: list[dict] = [{'type': 'tool_use', 'id': f'toolu_{uuid.uuid4().hex[:20]}', 'name': name,
                            'input': args if isinstance(args, dict) else {'raw': args}}
                           for name, args in calls]
    if not calls:
        content.append({'type': 'text', 'text': text})
    return {
        'id': f'msg_{uuid.uuid4().hex[:24]}', 'type': 'message', 'role': 'assistant', 'model': model,
        'content': content, 'stop_reason': 'tool_use' if calls else ('refusal' if refusal else 'end_turn'),
        'stop_sequence': None,
        'usage': {'input_tokens': tokens_in, 'output_tokens': tokens_out, 'cache_creation_input_tokens': 0,
                  'cache_read_input_tokens': 0, 'service_tier': 'standard'},
    }


def _error(api: Api, status: int, message: str) -> dict:
    if api in ('openai', 'responses'):
        kind = {401: ('invalid_request_error', 'invalid_api_key'), 429: ('requests', 'rate_limit_exceeded'),
                500: ('server_error', None)}[status]
        return {'error': {'message': message, 'type': kind[0], 'param': None, 'code': kind[1]}}
    kind = {401: 'authentication_error', 429: 'rate_limit_error', 500: 'api_error'}[status]
    return {'type': 'error', 'error': {'type': kind, 'message': message}}


def _openai_completion(model: str, text: str, tokens_in: int, tokens_out: int) -> dict:
    return {
        'id': f'chatcmpl-{uuid.uuid4().hex[:24]}', 'object': 'chat.completion', 'created': int(time.time()),
        'model': model, 'system_fingerprint': 'fp_fake', 'service_tier': 'default',
        'choices': [{'index': 0, 'logprobs': None, 'finish_reason': 'stop',
                     'message': {'role': 'assistant', 'content': text, 'refusal': None, 'annotations': []}}],
        'usage': {'prompt_tokens': tokens_in, 'completion_tokens': tokens_out,
                  'total_tokens': tokens_in + tokens_out,
                  'prompt_tokens_details': {'cached_tokens': 0, 'audio_tokens': 0},
                  'completion_tokens_details': {'reasoning_tokens': 0, 'audio_tokens': 0,
                                                'accepted_prediction_tokens': 0,
                                                'rejected_prediction_tokens': 0}},
    }


def _anthropic_message(model: str, text: str, tokens_in: int, tokens_out: int) -> dict:
    return {
        'id': f'msg_{uuid.uuid4().hex[:24]}', 'type': 'message', 'role': 'assistant', 'model': model,
        'content': [{'type': 'text', 'text': text}], 'stop_reason': 'end_turn', 'stop_sequence': None,
        'usage': {'input_tokens': tokens_in, 'output_tokens': tokens_out, 'cache_creation_input_tokens': 0,
                  'cache_read_input_tokens': 0, 'service_tier': 'standard'},
    }


__all__ = ['FakeLLMServer', 'Step', 'RecordedRequest', 'GOOD_POLICY', 'FORBIDDEN_POLICY']
