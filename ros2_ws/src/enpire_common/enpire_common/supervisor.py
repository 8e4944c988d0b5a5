"""A small process supervisor: what `ros2 launch` does for the suite where `launch` is absent. Pure: no rclpy.

- every process runs in its own process group (its own session), so a node's children go with it;
- its output is kept in `<log_dir>/<label>.log` and echoed with a `[label] ` prefix (unless echo=False;
  the supervisor's own events always go to the console and to `<log_dir>/supervisor.log`);
- `request_shutdown(sig)` (safe to call from a signal handler) forwards SIGINT/SIGTERM to every group,
  waits `grace_s`, then SIGKILLs what is left; a second request escalates at once;
- a node that exits is restarted with exponential backoff when its policy asks (never, on_failure, always);
- `after` dependencies and ready checks (a log pattern, a delay, a hook polled until true) order the start;
- on Linux each child also gets PR_SET_PDEATHSIG, so a SIGKILLed supervisor does not leave nodes running.

    sup = Supervisor([ProcessSpec('talker', [sys.executable, '-m', 'x'], ready_log='ready')], log_dir)
    signal.signal(signal.SIGINT, lambda s, f: sup.request_shutdown(s))
    exit_code = sup.run()
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

POLL_S = 0.05


@dataclass
class Restart:
    """Restart policy (the same fields as bringup_file.RestartPolicy, which can be passed instead)."""
    policy: str = 'never'           # never | on_failure | always
    max_restarts: int = 5
    backoff_s: float = 0.5
    backoff_factor: float = 2.0
    backoff_max_s: float = 30.0
    stable_s: float = 30.0

    def delay(self, restarts_so_far: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * self.backoff_factor ** restarts_so_far)


@dataclass
class ProcessSpec:
    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)   # on top of the supervisor's environment
    cwd: str | None = None
    restart: Restart = field(default_factory=Restart)
    ready_log: str | None = None                        # regex seen in the output
    ready_delay_s: float = 0.0
    ready_hook: Callable[[], bool] | None = None        # polled (every 0.2 s) until true
    ready_timeout_s: float = 60.0
    after: list[str] = field(default_factory=list)      # labels that must be ready before this starts
    required: bool = False                              # exits for good -> shut everything down


@dataclass
class _State:
    spec: ProcessSpec
    proc: subprocess.Popen | None = None
    status: str = 'pending'        # pending | running | backoff | exited | failed
    started_at: float = 0.0
    starts: int = 0
    restarts_in_row: int = 0
    restart_at: float = 0.0
    ready: bool = False
    ready_failed: bool = False
    log_seen: threading.Event = field(default_factory=threading.Event)
    last_hook_poll: float = 0.0
    returncodes: list[int] = field(default_factory=list)
    reader: threading.Thread | None = None


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that asks the kernel to SIGTERM the child when the spawning thread dies (Linux)."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec():
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    return preexec


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists (signal 0 probes without sending)."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Supervisor:
    def __init__(self, specs: list[ProcessSpec], log_dir: str | os.PathLike, *, grace_s: float = 10.0,
                 echo: bool = True, console: TextIO | None = None, parent_death_signal: bool = True,
                 on_event: Callable[[str, str, str], None] | None = None):
        labels = [s.label for s in specs]
        if len(set(labels)) != len(labels):
            raise ValueError(f'duplicate labels: {labels}')
        for spec in specs:
            unknown = [a for a in spec.after if a not in labels]
            if unknown:
                raise ValueError(f'{spec.label}: after names unknown processes {unknown}')
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.grace_s = grace_s
        self.echo = echo
        self.console = console or sys.stdout
        self.on_event = on_event
        self._preexec = _pdeathsig_preexec() if parent_death_signal else None
        self._states = {s.label: _State(s) for s in specs}
        self._order = labels
        self._console_lock = threading.Lock()
        self._wake = threading.Event()
        self._shutdown_signal: int | None = None
        self._shutdown_requests = 0
        self._failed = False
        self._all_ready = threading.Event()
        self._finished = threading.Event()
        self._events_file = open(self.log_dir / 'supervisor.log', 'a', buffering=1)

    # ---------------------------------------------------------------- public
    def request_shutdown(self, sig: int = signal.SIGINT) -> None:
        """Async-signal-safe enough: sets flags only; the run loop does the work. Twice: SIGKILL now."""
        self._shutdown_requests += 1
        if self._shutdown_signal is None:
            self._shutdown_signal = int(sig)
        self._wake.set()

    def wait_all_ready(self, timeout: float | None = None) -> bool:
        return self._all_ready.wait(timeout)

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def all_ready(self) -> bool:
        return self._all_ready.is_set()

    def status(self) -> dict[str, dict]:
        return {label: {'status': st.status, 'ready': st.ready, 'starts': st.starts,
                        'pid': st.proc.pid if st.proc else None, 'returncodes': list(st.returncodes)}
                for label, st in self._states.items()}

    def pids(self) -> dict[str, int]:
        return {label: st.proc.pid for label, st in self._states.items()
                if st.proc is not None and st.proc.poll() is None}

    def run(self) -> int:
        """Start everything, supervise until a shutdown request or until nothing is left; the exit code."""
        self._event('', 'supervisor', f'starting {len(self._states)} processes, logs in {self.log_dir}')
        try:
            while True:
                if self._shutdown_signal is not None:
                    self._shutdown()
                    break
                now = time.monotonic()
                self._reap(now)
                self._start_due(now)
                self._update_ready(now)
                if all(st.status in ('exited', 'failed') for st in self._states.values()):
                    self._event('', 'supervisor', 'every process has ended')
                    break
                self._wake.wait(POLL_S)
                self._wake.clear()
        finally:
            self._kill_all(signal.SIGKILL, quiet=True)
            for st in self._states.values():
                if st.reader is not None:
                    st.reader.join(timeout=2)
            self._finished.set()
        failed = self._failed or any(st.status == 'failed' for st in self._states.values())
        code = 1 if failed else 0
        self._event('', 'supervisor', f'done, exit code {code}')
        self._events_file.close()
        return code

    # ---------------------------------------------------------------- internals
    def _event(self, label: str, kind: str, detail: str) -> None:
        line = f'[enpire up] {label + ": " if label else ""}{detail}'
        self._events_file.write(f'{time.strftime("%H:%M:%S")} {kind} {label} {detail}\n')
        with self._console_lock:
            print(line, file=self.console, flush=True)
        if self.on_event is not None:
            self.on_event(label, kind, detail)

    def _deps_ready(self, st: _State) -> bool:
        return all(self._states[d].ready or self._states[d].ready_failed for d in st.spec.after)

    def _start_due(self, now: float) -> None:
        for label in self._order:
            st = self._states[label]
            if st.status == 'pending':
                failed = [d for d in st.spec.after if self._states[d].status == 'failed']
                if failed:
                    st.status = 'failed'
                    self._event(label, 'failed', f'not started: {", ".join(failed)} failed')
                elif self._deps_ready(st):
                    self._spawn(st)
            elif st.status == 'backoff' and now >= st.restart_at:
                self._spawn(st)

    def _spawn(self, st: _State) -> None:
        spec = st.spec
        env = {**os.environ, 'PYTHONUNBUFFERED': '1', **spec.env}
        log = open(self.log_dir / f'{spec.label}.log', 'ab')
        log.write(f'---- start {st.starts + 1} at {time.strftime("%Y-%m-%d %H:%M:%S")}: '
                  f'{" ".join(spec.argv)}\n'.encode())
        log.flush()
        try:
            proc = subprocess.Popen(spec.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=env, cwd=spec.cwd, start_new_session=True,
                                    preexec_fn=self._preexec)
        except OSError as exc:
            log.write(f'---- could not start: {exc}\n'.encode())
            log.close()
            st.status = 'failed'
            self._event(spec.label, 'failed', f'could not start: {exc}')
            if spec.required:
                self._failed = True
                self.request_shutdown(signal.SIGINT)
            return
        st.proc = proc
        st.status = 'running'
        st.started_at = time.monotonic()
        st.starts += 1
        st.ready = False
        st.ready_failed = False
        st.log_seen.clear()
        st.last_hook_poll = 0.0
        pattern = re.compile(spec.ready_log) if spec.ready_log else None
        st.reader = threading.Thread(target=self._pump, args=(spec.label, proc, log, pattern, st.log_seen),
                                     name=f'log-{spec.label}', daemon=True)
        st.reader.start()
        self._event(spec.label, 'started', f'started (pid {proc.pid}, start {st.starts})')

    def _pump(self, label, proc, log, pattern, seen: threading.Event) -> None:
        prefix = f'[{label}] '
        try:
            for raw in iter(proc.stdout.readline, b''):
                log.write(raw)
                log.flush()
                text = raw.decode('utf-8', 'replace').rstrip('\n')
                if pattern is not None and not seen.is_set() and pattern.search(text):
                    seen.set()
                    self._wake.set()
                if self.echo:
                    with self._console_lock:
                        print(prefix + text, file=self.console, flush=True)
        except (OSError, ValueError):
            pass
        finally:
            proc.stdout.close()
            log.close()

    def _update_ready(self, now: float) -> None:
        for st in self._states.values():
            if st.status != 'running' or st.ready or st.ready_failed:
                continue
            spec = st.spec
            ok = now - st.started_at >= spec.ready_delay_s
            if ok and spec.ready_log:
                ok = st.log_seen.is_set()
            if ok and spec.ready_hook is not None:
                if now - st.last_hook_poll < 0.2:
                    ok = False
                else:
                    st.last_hook_poll = now
                    try:
                        ok = bool(spec.ready_hook())
                    except Exception as exc:  # a broken hook must not take the supervisor down
                        self._event(spec.label, 'warning', f'ready hook raised {exc!r}')
                        ok = False
            if ok:
                st.ready = True
                self._event(spec.label, 'ready', f'ready after {now - st.started_at:.1f} s')
            elif now - st.started_at > spec.ready_timeout_s:
                st.ready_failed = True
                self._event(spec.label, 'warning', f'not ready after {spec.ready_timeout_s:.0f} s')
        if not self._all_ready.is_set() and all(st.ready for st in self._states.values()):
            self._all_ready.set()
            self._event('', 'all_ready', f'all {len(self._states)} processes ready')

    def _reap(self, now: float) -> None:
        for st in self._states.values():
            if st.status != 'running' or st.proc is None or st.proc.poll() is None:
                continue
            rc = st.proc.returncode
            st.returncodes.append(rc)
            try:  # what the node left behind in its group goes too
                os.killpg(st.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            spec = st.spec
            how = f'signal {-rc}' if rc < 0 else f'code {rc}'
            ran = now - st.started_at
            if ran >= spec.restart.stable_s:
                st.restarts_in_row = 0
            wants = spec.restart.policy == 'always' or (spec.restart.policy == 'on_failure' and rc != 0)
            if wants and st.restarts_in_row < spec.restart.max_restarts:
                delay = spec.restart.delay(st.restarts_in_row)
                st.restarts_in_row += 1
                st.status = 'backoff'
                st.ready = False
                st.restart_at = now + delay
                self._event(spec.label, 'exited', f'exited with {how} after {ran:.1f} s; restart '
                            f'{st.restarts_in_row}/{spec.restart.max_restarts} in {delay:.2f} s')
                continue
            st.status = 'exited' if rc == 0 else 'failed'
            extra = ' (restart budget used up)' if wants else ''
            self._event(spec.label, st.status, f'exited with {how} after {ran:.1f} s{extra}')
            if spec.required:
                self._event(spec.label, 'supervisor', 'required process ended: shutting down')
                self._failed = self._failed or rc != 0
                self.request_shutdown(signal.SIGINT)

    def _running(self) -> list[_State]:
        return [st for st in self._states.values() if st.proc is not None and st.proc.poll() is None]

    def _kill_all(self, sig: int, quiet: bool = False, states: list[_State] | None = None) -> None:
        """Signal the groups of `states` (default: those whose leader still runs; a reaped leader's group
        was SIGKILLed when it was reaped, and its id may since have been reused)."""
        states = self._running() if states is None else states
        for st in states:
            try:
                os.killpg(st.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                continue
        for st in states:
            if st.proc is not None:
                try:
                    st.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    if not quiet:
                        self._event(st.spec.label, 'warning', 'did not die on SIGKILL within 5 s')

    def _shutdown(self) -> None:
        sig = self._shutdown_signal or signal.SIGINT
        name = signal.Signals(sig).name
        running = self._running()
        self._event('', 'shutdown', f'shutting down: {name} to {len(running)} processes, '
                    f'grace {self.grace_s:.0f} s')
        for st in self._states.values():
            if st.status == 'backoff':
                st.status = 'exited'
        requests = self._shutdown_requests
        late_procs = stop_groups([st.proc for st in running], sig, self.grace_s,
                                 hurry=lambda: self._shutdown_requests != requests)
        late = [st for st in running if st.proc in late_procs]
        if late:
            self._event('', 'shutdown', 'SIGKILL to ' + ', '.join(st.spec.label for st in late))
            self._failed = True
        for st in running:
            rc = st.proc.returncode
            st.returncodes.append(rc)
            # a node stopped by our signal ends well: 0, -SIGINT/-SIGTERM, or 130/143 style codes
            clean = rc in (0, -sig, 128 + sig) and not late
            st.status = 'exited' if clean else 'failed'
            if not clean and st not in late:
                self._event(st.spec.label, 'failed', f'exit code {rc} on {name}')
        self._event('', 'shutdown', 'all processes stopped')


def stop_groups(procs: list[subprocess.Popen], sig: int = signal.SIGINT, grace_s: float = 10.0,
                hurry: Callable[[], bool] = lambda: False) -> list[subprocess.Popen]:
    """Send `sig` to the process group of each process, wait up to `grace_s` (or until `hurry()`) for the
    groups to empty, SIGKILL what is left and reap the leaders; returns the processes that had to be
    SIGKILLed. Every process was started as the leader of its own session (start_new_session)."""
    alive = [p for p in procs if p.poll() is None]
    for proc in alive:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and not hurry():
        for proc in alive:
            proc.poll()   # reap the leader: a zombie still counts as a member of its group
        if not any(group_alive(p.pid) for p in alive):
            break
        time.sleep(POLL_S)
    late = [p for p in alive if p.poll() is None or group_alive(p.pid)]
    for proc in procs:   # the whole group: children of a node (sandboxes, recorders) go too
        if proc in late or proc.poll() is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    return late
