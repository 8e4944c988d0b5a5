"""Run a policy file in a locked-down child process (pure: no rclpy).

    runner = PolicyRunner(SandboxLimits(step_deadline_s=0.1))
    r = runner.start('policy.py', TrialContext(...))     # load + Policy() + reset(context)
    r = runner.act(observation)        # r.ok and r.action; r.held (deadline missed: hold); r.fatal
    runner.on_attempt_failed(report)
    runner.close()

The boundary is the operating system's (`os_sandbox.py`): bubblewrap namespaces (a read-only view of
only what the child needs, a private tmpfs scratch, no network, its own pids), a host uid per sandbox
(root) or a user namespace, a seccomp filter, RLIMIT_AS/CPU/NPROC/FSIZE, and an environment that is an
allow-list. Python-level layers stay as a second line, never relied on: a static AST check of the source
(imports in the task's allowed imports, no eval/exec/open/__import__, no dunder escapes), an `__import__`
guard, a meta-path allowlist and an audit hook in the child. `SandboxLimits(os_sandbox=False)` runs behind
those Python layers only (plus a network namespace and `nobody`): the explicitly weaker mode, for machines
without user namespaces when their operator accepts it, and for the benchmark's comparison.

The answer pipe is bounded (frame size, a deadline per frame); a wall-clock deadline per call holds the
last command, a hang kills the child. Anything the policy does wrong ends the attempt with a reason
(scrubbed of secrets, capped); no exception leaves the runner. The child answers in JSON, never pickle,
so the caller never unpickles policy data.
"""
from __future__ import annotations

import ast
import functools
import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, field_validator

from enpire_rollout import os_sandbox
from enpire_rollout.answer_pipe import AnswerPipe, FrameError, RequestPipe
from enpire_rollout.child_env import allowlisted_env
from enpire_rollout.policy_contract import AttemptReport, Observation, TrialContext
from enpire_rollout.policy_runtime import BASE_IMPORTS, allowed_imports
from enpire_rollout.scrub import scrub
from enpire_rollout.source_parse import parse_source

FORBIDDEN_NAMES = frozenset({'eval', 'exec', 'compile', 'open', '__import__', 'breakpoint', 'input',
                             'globals', 'locals', 'vars', 'memoryview', '__builtins__', '__loader__'})
FORBIDDEN_ATTRIBUTES = frozenset({
    '__subclasses__', '__globals__', '__builtins__', '__code__', '__closure__', '__bases__', '__base__',
    '__mro__', '__dict__', '__getattribute__', '__reduce__', '__reduce_ex__', '__loader__', '__spec__',
    '__self__', '__func__', 'f_globals', 'f_locals', 'f_back', 'gi_frame', 'cr_frame', 'tb_frame',
    '__import__', '__traceback__', 'ctypeslib', '_ctypes',
})


class SandboxLimits(BaseModel):
    step_deadline_s: float = 0.1      # act() must answer within this; else the last command is held
    hang_timeout_s: float = 3.0       # an act() still running after this is a hang: the policy is killed
    call_timeout_s: float = 10.0      # reset() / on_attempt_failed()
    startup_timeout_s: float = 30.0   # process start + loading the policy
    cpu_s: float = 300.0              # RLIMIT_CPU of the child (whole trial)
    memory_mb: int = 512              # RLIMIT_AS headroom above the child's size after its imports
    file_mb: int = 16                 # RLIMIT_FSIZE
    os_sandbox: bool = True           # the OS boundary; False: the Python guard only (explicitly weaker)
    max_frame_bytes: int = 1 << 18    # an answer announcing more ends the attempt
    frame_timeout_s: float = 0.25     # an answer begun must be complete within this
    data_dirs: tuple[str, ...] = ()   # weights files a policy names must lie here (empty: anywhere)
    no_network: bool = True           # weaker mode: new network namespace
    drop_root: bool = True            # weaker mode: a root caller's child runs as nobody
    static_check: bool = True         # tests switch layers off to prove the next one holds
    guard_imports: bool = True
    audit_hook: bool = True


class StepResult(BaseModel):
    ok: bool
    action: tuple[float, ...] | None = None     # the task's action vector
    held: bool = False                # deadline missed: hold the last safe command (not a failure)
    fatal: bool = False               # the sandbox process is gone (or was killed)
    # result | deadline | exception | invalid_action | violation | hang | ...
    kind: str = ''
    reason: str = ''
    latency_s: float = 0.0

    @field_validator('reason')
    @classmethod
    def _scrubbed(cls, reason: str) -> str:
        """Whatever the policy can put into a reason leaves the runner scrubbed and capped."""
        return scrub(reason)


class SandboxError(RuntimeError):
    pass


def static_check(source: str, allowed: frozenset[str] = BASE_IMPORTS) -> list[str]:
    """Problems that refuse a policy before it is loaded ([] when none)."""
    try:
        tree = parse_source(source)
    except SyntaxError as exc:
        return [f'syntax error: {exc}']
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f'line {node.lineno}: import {a.name} is not allowed' for a in node.names
                         if not _import_allowed(a.name, (), allowed)]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names)
            if node.level or not _import_allowed(node.module or '', names, allowed):
                problems.append(f'line {node.lineno}: from {node.module} import ... is not allowed')
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(f'line {node.lineno}: {node.id} is not allowed')
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            problems.append(f'line {node.lineno}: attribute {node.attr} is not allowed')
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value in FORBIDDEN_ATTRIBUTES):
            problems.append(f'line {node.lineno}: string {node.value!r} is not allowed')
    if not any(isinstance(n, ast.ClassDef) and n.name == 'Policy' for n in tree.body):
        problems.append('no class Policy at module level')
    return problems


def _import_allowed(module: str, fromlist: tuple, allowed: frozenset[str]) -> bool:
    if module in allowed or (module.split('.')[0] == 'numpy' and 'numpy' in allowed):
        return True
    return bool(module) and bool(fromlist) and all(f'{module}.{f}' in allowed for f in fromlist)


def sha256_file(path: str | Path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _never_raises(method):
    """A public call of the runner answers with a StepResult, whatever happens inside (the caller's later
    attempts must still run): an unexpected error kills the child and ends the attempt with its reason."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self._kill()
            self.dead_reason = f'sandbox runner error: {type(exc).__name__}: {exc}'
            return self._fail('crash', self.dead_reason, fatal=True)
    return wrapper


def _finite_action(action, size: int) -> tuple[float, ...] | None:
    """An answer's action as `size` finite floats (the task's action size), or None: only JSON numbers (no
    booleans), no integer too large for a float."""
    if not isinstance(action, list) or len(action) != size or not all(type(v) in (int, float)
                                                                          for v in action):
        return None
    try:
        values = tuple(float(v) for v in action)
    except OverflowError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


class PolicyRunner:
    """One policy in one sandbox process. Not thread-safe: one caller drives it."""

    def __init__(self, limits: SandboxLimits | None = None, scratch_dir: str | Path | None = None,
                 keep_scratch: bool = False):
        self.limits = limits or SandboxLimits()
        self._scratch_given = scratch_dir is not None
        self.scratch = Path(scratch_dir) if scratch_dir else None
        self.keep_scratch = keep_scratch or self._scratch_given
        self.proc: subprocess.Popen | None = None
        self._in: AnswerPipe | None = None    # answers from the child
        self._lease: os_sandbox.UidLease | None = None
        self._out: RequestPipe | None = None  # requests to the child
        self._seq = 0
        self._pending: tuple[int, float] | None = None   # (seq, sent_at) of an act() past its deadline
        self.missed_deadlines = 0
        self.steps = 0
        self.hardening: dict = {}
        self.dead_reason = ''
        self._last_answer: dict = {}
        self.policy_path: Path | None = None
        self._source: str | None = None
        self.context: TrialContext | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.dead_reason

    @_never_raises
    def start(self, policy_path: str | Path, context: TrialContext, source: str | None = None) -> StepResult:
        """Load the policy in a fresh process and call reset(context). `source`: the content the caller
        checked (its hash); the file is then not read again, so a swap after the check changes nothing."""
        self.close()
        self.dead_reason = ''
        self.policy_path, self.context = Path(policy_path), context
        self._source = source
        if self._source is None:
            try:
                self._source = self.policy_path.read_text()
            except OSError as exc:
                return self._fail('load_error', f'cannot read policy: {exc}', fatal=True)
        source = self._source
        if self.limits.static_check:
            problems = static_check(source, allowed_imports(context.task))
            if problems:
                return self._fail('violation',
                                  'policy refused by the static check: ' + '; '.join(problems[:5]),
                                  fatal=True)
        if self.limits.os_sandbox and not os_sandbox.probe().available:
            return self._fail('load_error', 'no OS sandbox on this machine: ' + os_sandbox.probe().detail,
                              fatal=True)
        self._spawn(source)
        self._out.send(pickle.dumps({'source': source, 'filename': str(self.policy_path)}),
                       self.limits.startup_timeout_s)
        hello = self._wait_answer(None, self.limits.startup_timeout_s)
        if not hello.ok:
            return self._end(hello)
        self.hardening = dict(self._last_answer.get('hardening') or {})
        return self._call('reset', context, self.limits.call_timeout_s)

    @_never_raises
    def restart(self, reports: list[AttemptReport]) -> StepResult:
        """After a fatal failure: a new process, reset(context), then every earlier report replayed."""
        result = self.start(self.policy_path, self.context, self._source)
        for report in reports:
            if not result.ok:
                break
            result = self.on_attempt_failed(report)
        return result

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None and self._pending is None and not self.dead_reason:
                try:
                    self._seq += 1
                    self._out.send(pickle.dumps({'op': 'close', 'seq': self._seq}), 1.0)
                    self.proc.wait(timeout=1.0)
                except (OSError, subprocess.TimeoutExpired, ValueError, FrameError):
                    pass
            self._kill()
        for conn in (self._in, self._out):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        self._in = self._out = None
        self._pending = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self.scratch is not None and not self.keep_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ calls
    @_never_raises
    def act(self, observation: Observation) -> StepResult:
        if not self.alive:
            return self._not_running()
        self.steps += 1
        if self._pending is not None:
            seq, sent = self._pending
            late = self._poll_answer(seq, self.limits.step_deadline_s)
            if late is None:
                if time.monotonic() - sent > self.limits.hang_timeout_s:
                    self._kill()
                    self.dead_reason = (f'hang: act() gave no answer for {time.monotonic() - sent:.1f} s '
                                        f'(step deadline {self.limits.step_deadline_s} s)')
                    return self._fail('hang', self.dead_reason, fatal=True)
                self.missed_deadlines += 1
                return StepResult(ok=True, held=True, kind='deadline',
                                  reason='deadline missed: previous act() still running '
                                         f'({self.missed_deadlines})')
            self._pending = None
            if not late.ok:
                return self._end(late)
            # a late answer belongs to an old observation: dropped; ask again with the current one
        return self._call('act', observation, self.limits.step_deadline_s, may_miss=True)

    @_never_raises
    def on_attempt_failed(self, report: AttemptReport) -> StepResult:
        if not self.alive:
            return self._not_running()
        if self._pending is not None:  # let a slow act() finish first, within the hang budget
            seq, sent = self._pending
            late = self._poll_answer(seq, max(0.0, self.limits.hang_timeout_s - (time.monotonic() - sent)))
            if late is None:
                self._kill()
                self.dead_reason = 'hang: act() never answered'
                return self._fail('hang', self.dead_reason, fatal=True)
            self._pending = None
        return self._call('failed', report, self.limits.call_timeout_s)

    # ------------------------------------------------------------------ internals
    def _spawn(self, source: str) -> None:
        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(prefix='enpire_policy_'))
        self.scratch.mkdir(parents=True, exist_ok=True)
        log = open(self.scratch / 'policy.log', 'ab')
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        limits = self.limits.model_dump()
        limits['allowed_imports'] = sorted(allowed_imports(self.context.task))
        limits['action_size'] = self.context.action_size
        child = ['-m', 'enpire_rollout.sandbox_child', str(req_r), str(ans_w)]
        if self.limits.os_sandbox:
            # The log file stays outside: the child's stdout/stderr are passed in as open descriptors.
            support = os_sandbox.probe()
            if support.mode == 'uid':
                self._lease = os_sandbox.UidLease.acquire()
                limits['uid'] = self._lease.uid
            limits['os_boundary'] = True
            data = os_sandbox.data_files_named(source, tuple(self.limits.data_dirs))
            python = os_sandbox.runtime_view()['executable']
            argv = os_sandbox.bwrap_argv(support, [python, '-S', '-P', '-B', *child, os_sandbox.SCRATCH,
                                                   json.dumps(limits)], data_files=data)
            env, cwd = allowlisted_env(), '/'
        else:
            if os.getuid() == 0 and self.limits.drop_root:
                for p in (self.scratch, self.scratch / 'policy.log'):
                    os.chown(p, 65534, 65534)
            argv = [sys.executable, *child, str(self.scratch), json.dumps(limits)]
            env = allowlisted_env(pythonpath=[p for p in sys.path if p and os.path.isdir(p)])
            cwd = str(self.scratch)
        self.proc = subprocess.Popen(argv, pass_fds=(req_r, ans_w), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=cwd, env=env, close_fds=True)
        log.close()
        os.close(req_r)
        os.close(ans_w)
        self._out = RequestPipe(req_w)
        self._in = AnswerPipe(ans_r, self.limits.max_frame_bytes, self.limits.frame_timeout_s)
        self._pending = None
        self._seq = 0

    def _call(self, op: str, arg, timeout: float, may_miss: bool = False) -> StepResult:
        self._seq += 1
        seq = self._seq
        sent = time.monotonic()
        try:
            self._out.send(pickle.dumps({'op': op, 'seq': seq, 'arg': arg}), max(timeout, 1.0))
        except FrameError as exc:
            self._kill()
            self.dead_reason = f'sandbox protocol broken ({exc})'
            return self._fail('violation', self.dead_reason, fatal=True)
        except (OSError, ValueError):
            return self._died()
        answer = self._poll_answer(seq, timeout)
        if answer is None:
            if may_miss:
                self._pending = (seq, sent)
                self.missed_deadlines += 1
                return StepResult(ok=True, held=True, kind='deadline', latency_s=time.monotonic() - sent,
                                  reason=f'deadline missed ({self.limits.step_deadline_s} s): command held')
            self._kill()
            self.dead_reason = f'hang: {op} gave no answer within {timeout:.1f} s'
            return self._fail('hang', self.dead_reason, fatal=True)
        answer.latency_s = time.monotonic() - sent
        return answer if answer.ok else self._end(answer)

    def _poll_answer(self, seq: int | None, timeout: float) -> StepResult | None:
        """The answer to `seq` (stale answers skipped), a failure if the child died, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                raw = self._in.read(remaining)
                if raw is None:
                    return None
            except FrameError as exc:
                self._kill()
                self.dead_reason = f'sandbox protocol broken ({exc})'
                return self._fail('violation', self.dead_reason, fatal=True)
            except (EOFError, OSError):
                return self._died()
            try:
                msg = json.loads(raw)
                if not isinstance(msg, dict):
                    raise ValueError('not an object')
            except (ValueError, RecursionError):     # a forged frame: deep nesting, 5000-digit numbers
                self._kill()
                self.dead_reason = 'sandbox protocol broken (garbage on the answer pipe)'
                return self._fail('violation', self.dead_reason, fatal=True)
            self._last_answer = msg
            if seq is not None and msg.get('seq') != seq:
                if time.monotonic() >= deadline:  # a flood of stale answers holds no caller past it
                    return None
                continue
            return self._from_answer(msg)

    def _wait_answer(self, seq, timeout) -> StepResult:
        answer = self._poll_answer(seq, timeout)
        if answer is None:
            self._kill()
            self.dead_reason = f'hang: the policy did not load within {timeout:.0f} s'
            return self._fail('hang', self.dead_reason, fatal=True)
        return answer

    def _from_answer(self, msg: dict) -> StepResult:
        if msg.get('ok'):
            action = msg.get('action')
            if action is not None:
                action = _finite_action(action, self.context.action_size)
                if action is None:
                    return self._fail('invalid_action', f'invalid action {str(msg.get("action"))[:200]}')
            return StepResult(ok=True, action=action, kind=str(msg.get('kind', 'result'))[:40])
        kind = str(msg.get('kind', 'exception'))[:40]
        error = str(msg.get('error', ''))
        labels = {'violation': 'sandbox violation', 'exception': 'policy raised', 'memory': 'memory limit',
                  'invalid_action': 'invalid action', 'load_error': 'policy failed to load'}
        reason = f"{labels.get(kind, kind)}: {error}"
        trace = str(msg.get('trace') or '').strip().splitlines()
        if kind in ('exception', 'load_error') and trace:
            reason += f" ({trace[-2].strip() if len(trace) > 1 else ''})"
        return StepResult(ok=False, kind=kind, reason=reason, fatal=kind in ('violation', 'load_error'))

    def _end(self, result: StepResult) -> StepResult:
        """A failure: violations and load errors also end the process."""
        if result.fatal:
            self._kill()
            self.dead_reason = self.dead_reason or result.reason
        return result

    def _died(self) -> StepResult:
        code = None
        if self.proc is not None:
            try:   # the pipe closed; a child that lingers after closing it is ended here, not waited for
                code = self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self._kill()
                code = self.proc.returncode
        if code is not None and self.limits.os_sandbox and 128 < code < 128 + 65:
            code = 128 - code           # bwrap exits with 128 + the signal that ended its child
        if code is not None and code < 0:
            sig = signal.Signals(-code).name
            why = {'SIGXCPU': 'cpu time limit exceeded', 'SIGKILL': 'killed (memory or external)',
                   'SIGSEGV': 'crashed (segfault)', 'SIGXFSZ': 'file size limit exceeded',
                   'SIGSYS': 'bad system call (seccomp kills calls of another architecture)'}.get(sig, sig)
            self.dead_reason = f'policy process {why} ({sig})'
        else:
            self.dead_reason = f'policy process exited (code {code})'
        kind = 'cpu_limit' if 'cpu' in self.dead_reason else 'crash'
        try:
            tail = (self.scratch / 'policy.log').read_text(errors='replace').strip().splitlines()[-1:]
            if tail and kind == 'crash':
                self.dead_reason += f': {tail[0][:200]}'
        except (OSError, TypeError):
            pass
        return self._fail(kind, self.dead_reason, fatal=True)

    def _not_running(self) -> StepResult:
        if not self.dead_reason and self.proc is not None and self.proc.poll() is not None:
            return self._died()      # it ended between calls (a CPU limit, a signal): say how, from its exit
        return self._fail(self._dead_kind(), self.dead_reason or 'policy process is not running', fatal=True)

    def _dead_kind(self) -> str:
        return 'hang' if self.dead_reason.startswith('hang') else 'crash'

    def _fail(self, kind: str, reason: str, fatal: bool = False) -> StepResult:
        return StepResult(ok=False, kind=kind, reason=reason, fatal=fatal)

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
