"""Supervisor: prefixed per-node logs, ready ordering, signal forwarding, restart backoff, no orphans."""
from __future__ import annotations

import io
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from enpire_common.supervisor import ProcessSpec, Restart, Supervisor

from tests.enpire_bringup.procs import new_token, pids_with_token, wait_no_pids

CHILD = str(Path(__file__).with_name('child.py'))


class Running:
    """A supervisor run in a background thread, with its console captured and events recorded."""

    def __init__(self, specs, log_dir, **kwargs):
        self.console = io.StringIO()
        self.events: list[tuple[float, str, str, str]] = []
        self.sup = Supervisor(specs, log_dir, console=self.console,
                              on_event=lambda *e: self.events.append((time.monotonic(), *e)), **kwargs)
        self.code = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.code = self.sup.run()

    def join(self, timeout=20.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), 'supervisor did not finish'
        return self.code

    def times(self, label, kind):
        return [t for t, lab, k, _ in self.events if lab == label and k == kind]


def serve(label, token, *extra, **kwargs):
    return ProcessSpec(label, [sys.executable, CHILD, 'serve', *extra], env={'ENPIRE_TEST_TOKEN': token},
                       ready_log='node ready', **kwargs)


def test_logs_ready_order_and_sigint_forwarding(tmp_path):
    token = new_token()
    run = Running([serve('cell_0.a', token), serve('cell_0.b', token, after=['cell_0.a'])], tmp_path)
    assert run.sup.wait_all_ready(15), run.console.getvalue()
    assert run.times('cell_0.b', 'started')[0] >= run.times('cell_0.a', 'ready')[0]
    assert len(pids_with_token(token)) == 2
    run.sup.request_shutdown(signal.SIGINT)
    assert run.join() == 0
    for label in ('cell_0.a', 'cell_0.b'):
        log = (tmp_path / f'{label}.log').read_text()
        assert 'node ready' in log and 'got SIGINT' in log
        assert f'[{label}] got SIGINT' in run.console.getvalue()
    assert 'shutting down: SIGINT' in (tmp_path / 'supervisor.log').read_text()
    assert wait_no_pids(token) == []


def test_sigterm_is_forwarded_and_grandchildren_go_too(tmp_path):
    token = new_token()
    run = Running([serve('a', token, '--grandchild')], tmp_path)
    assert run.sup.wait_all_ready(15)
    deadline = time.monotonic() + 30
    while len(pids_with_token(token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids_with_token(token)) == 2          # the node and its grandchild
    run.sup.request_shutdown(signal.SIGTERM)
    assert run.join() == 0
    assert 'got SIGTERM' in (tmp_path / 'a.log').read_text()
    assert wait_no_pids(token) == []


def test_crashed_node_restarts_with_exponential_backoff(tmp_path):
    token = new_token()
    starts = tmp_path / 'starts.txt'
    restart = Restart(policy='on_failure', max_restarts=3, backoff_s=0.2, backoff_factor=2.0)
    spec = ProcessSpec('crasher', [sys.executable, CHILD, 'crash', str(starts)],
                       env={'ENPIRE_TEST_TOKEN': token}, restart=restart)
    run = Running([spec], tmp_path, echo=False)
    assert run.join(30) == 1                          # budget used up: the node ended as failed
    stamps = [float(x) for x in starts.read_text().split()]
    assert len(stamps) == 4                           # the first start and 3 restarts
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    for gap, delay in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= delay, gaps
    assert gaps[2] > gaps[0]
    assert run.sup.status()['crasher']['returncodes'] == [3, 3, 3, 3]
    assert 'restart budget used up' in (tmp_path / 'supervisor.log').read_text()
    assert wait_no_pids(token) == []


def test_never_policy_does_not_restart_and_always_restarts_clean_exits(tmp_path):
    never = ProcessSpec('once', [sys.executable, CHILD, 'exit0'])
    always = ProcessSpec('again', [sys.executable, CHILD, 'exit0'],
                         restart=Restart(policy='always', max_restarts=2, backoff_s=0.05))
    run = Running([never, always], tmp_path, echo=False)
    assert run.join() == 0
    status = run.sup.status()
    assert status['once']['starts'] == 1 and status['once']['status'] == 'exited'
    assert status['again']['starts'] == 3


def test_leftover_children_of_a_crashed_node_are_killed(tmp_path):
    token = new_token()
    spec = ProcessSpec('leaky', ['sh', '-c', 'sleep 600 & echo started; sleep 0.3; exit 4'],
                       env={'ENPIRE_TEST_TOKEN': token})
    run = Running([spec], tmp_path, echo=False)
    assert run.join() == 1
    assert wait_no_pids(token) == []


def test_node_ignoring_signals_is_killed_after_grace(tmp_path):
    token = new_token()
    spec = ProcessSpec('stubborn', [sys.executable, CHILD, 'stubborn'], env={'ENPIRE_TEST_TOKEN': token},
                       ready_log='node ready')
    run = Running([spec], tmp_path, grace_s=0.5, echo=False)
    assert run.sup.wait_all_ready(15)
    t0 = time.monotonic()
    run.sup.request_shutdown(signal.SIGINT)
    assert run.join() == 1                            # not a clean shutdown: it needed SIGKILL
    assert time.monotonic() - t0 < 5
    assert 'SIGKILL to stubborn' in (tmp_path / 'supervisor.log').read_text()
    assert wait_no_pids(token) == []


def test_required_node_exit_brings_everything_down(tmp_path):
    token = new_token()
    run = Running([serve('server', token), ProcessSpec('main', [sys.executable, CHILD, 'exit0'],
                                                       required=True, after=['server'])], tmp_path)
    assert run.join() == 0
    assert 'got SIGINT' in (tmp_path / 'server.log').read_text()
    assert wait_no_pids(token) == []


def test_ready_hook_and_timeout(tmp_path):
    flag = threading.Event()
    hooked = ProcessSpec('hooked', [sys.executable, CHILD, 'serve'], ready_hook=flag.is_set)
    never = ProcessSpec('never', [sys.executable, CHILD, 'serve'], ready_log='no such line',
                        ready_timeout_s=0.5)
    run = Running([hooked, never], tmp_path, echo=False)
    time.sleep(0.6)
    assert not run.sup.status()['hooked']['ready']
    flag.set()
    deadline = time.monotonic() + 30
    while not run.sup.status()['hooked']['ready'] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.sup.status()['hooked']['ready']
    assert not run.sup.all_ready
    log = tmp_path / 'supervisor.log'
    while 'not ready after' not in log.read_text() and time.monotonic() < deadline + 5:
        time.sleep(0.05)  # the supervisor's loop logs the timeout on its next pass
    assert 'not ready after' in log.read_text()
    # A child signalled before it installs its handlers dies of the signal: wait until both serve.
    while time.monotonic() < deadline + 30 and not all(
            (tmp_path / f'{label}.log').exists() and 'node ready' in (tmp_path / f'{label}.log').read_text()
            for label in ('hooked', 'never')):
        time.sleep(0.05)
    run.sup.request_shutdown()
    assert run.join() == 0


def test_bad_specs_are_refused(tmp_path):
    with pytest.raises(ValueError, match='duplicate'):
        Supervisor([ProcessSpec('a', ['true']), ProcessSpec('a', ['true'])], tmp_path)
    with pytest.raises(ValueError, match='unknown'):
        Supervisor([ProcessSpec('a', ['true'], after=['b'])], tmp_path)
