"""The policy sandbox against hostile policies: every break-out ends the attempt with a clear reason."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from enpire_rollout.policy_contract import AttemptReport, Observation, TrialContext
from enpire_rollout.sandbox import PolicyRunner, SandboxLimits, static_check

CONTEXT = TrialContext(task='pusht', attempts=2, steps_per_attempt=10, control_hz=10.0, cameras=['top'],
                       seed=3)

GOOD = '''
import numpy as np
from enpire_rollout.policy_tools import GOAL_POSE

class Policy:
    def reset(self, context):
        self.n = 0
        self.reports = []

    def act(self, observation):
        self.n += 1
        return (float(GOAL_POSE[0]) + len(self.reports), np.float64(100.0 + self.n))

    def on_attempt_failed(self, report):
        self.reports.append(report)
'''


def observation(step: int = 0) -> Observation:
    return Observation(step=step, attempt=1, time_s=0.1 * step, agent_position=np.zeros(2),
                       agent_velocity=np.zeros(2), frames={'top': np.zeros((96, 96, 3), np.uint8)},
                       table_to_image={'top': np.eye(3)})


def write_policy(tmp_path: Path, act_body: str, header: str = '', name: str = 'policy.py',
                 reset_body: str = 'pass') -> Path:
    source = header + '\n\nclass Policy:\n    def reset(self, context):\n' + textwrap.indent(
        textwrap.dedent(reset_body), ' ' * 8) + '\n\n    def act(self, observation):\n' + textwrap.indent(
        textwrap.dedent(act_body), ' ' * 8) + '\n\n    def on_attempt_failed(self, report):\n        pass\n'
    path = tmp_path / name
    path.write_text(source)
    return path


@pytest.fixture
def runner(tmp_path):
    runners = []

    def make(**limits):
        r = PolicyRunner(SandboxLimits(**limits), scratch_dir=tmp_path / f'scratch{len(runners)}')
        runners.append(r)
        return r
    yield make
    for r in runners:
        r.close()
        assert r.proc is None or r.proc.poll() is not None, 'sandbox process left running'


def test_good_policy_runs_and_hears_failures(tmp_path, runner):
    path = tmp_path / 'good.py'
    path.write_text(GOOD)
    r = runner()
    assert r.start(path, CONTEXT).ok
    first = r.act(observation())
    assert first.ok and first.action == (256.0, 101.0)
    assert r.on_attempt_failed(AttemptReport(attempt=1, score=0.2, success=False, reason='low', steps=10)).ok
    assert r.act(observation()).action == (257.0, 102.0)
    assert r.hardening.get('RLIMIT_NPROC') == 0 and 'RLIMIT_AS' in r.hardening


def test_infinite_loop_is_held_then_killed_as_hang(tmp_path, runner):
    r = runner(step_deadline_s=0.05, hang_timeout_s=0.6)
    assert r.start(write_policy(tmp_path, 'while True:\n    pass'), CONTEXT).ok
    results = [r.act(observation(i)) for i in range(40)]
    held = [x for x in results if x.held]
    assert held and all(x.ok and x.action is None for x in held)
    final = next(x for x in results if not x.ok)
    assert final.fatal and final.kind == 'hang' and 'no answer' in final.reason
    assert not r.alive
    assert r.act(observation()).fatal       # the caller keeps going; the runner stays dead


def test_cpu_limit_kills_a_spinning_policy(tmp_path, runner):
    r = runner(cpu_s=1, step_deadline_s=0.05, hang_timeout_s=30)
    assert r.start(write_policy(tmp_path, 'while True:\n    pass'), CONTEXT).ok
    for i in range(400):
        result = r.act(observation(i))
        if not result.ok:
            break
    assert result.fatal and result.kind == 'cpu_limit', result.reason


def test_memory_bomb_fails_cleanly(tmp_path, runner):
    r = runner(memory_mb=256)
    body = 'blocks = []\nwhile True:\n    blocks.append(np.ones(50_000_000))'
    assert r.start(write_policy(tmp_path, body, header='import numpy as np'), CONTEXT).ok
    result = r.act(observation())
    assert not result.ok and result.kind == 'memory' and 'MemoryError' in result.reason
    assert r.alive                                 # the process survives a refused allocation
    assert r.act(observation()).kind == 'memory'


@pytest.mark.parametrize('header,body,needle', [
    ('import os', 'os.fork()', 'import os'),
    ('import socket', 'socket.socket()', 'import socket'),
    ('import subprocess', "subprocess.run(['true'])", 'import subprocess'),
    ('', "open('/tmp/evil.txt', 'w').write('x')", 'open is not allowed'),
    ('', "().__class__.__bases__[0].__subclasses__()", '__subclasses__'),
    ('', "__import__('os')", '__import__ is not allowed'),
    ('from . import x', 'return (1, 1)', 'from None import'),
])
def test_static_check_refuses_before_loading(tmp_path, runner, header, body, needle):
    path = write_policy(tmp_path, body, header=header)
    assert any(needle in p for p in static_check(path.read_text()))
    result = runner().start(path, CONTEXT)
    assert not result.ok and result.fatal and result.kind == 'violation' and needle in result.reason


@pytest.mark.parametrize('header,body,needle', [
    ('import os', 'os.fork()', 'os.fork'),
    ('import os', "os.system('true')", 'os.system'),
    ('import socket', "socket.socket().connect(('127.0.0.1', 9))", 'socket.__new__'),
    ('import subprocess', "subprocess.run(['true'])", 'subprocess'),
    ('import os', "os.kill(os.getppid(), 9)", 'os.kill'),
])
def test_runtime_layers_hold_without_the_static_check(tmp_path, runner, header, body, needle):
    """With the static check and the import guard off, the audit hook / allowlist still stop it."""
    r = runner(static_check=False, guard_imports=False)
    start = r.start(write_policy(tmp_path, body + '\nreturn (1.0, 1.0)', header=header), CONTEXT)
    result = r.act(observation()) if start.ok else start
    assert not result.ok and result.fatal and result.kind == 'violation', result
    assert needle in result.reason
    assert not r.alive


def test_import_guard_holds_without_the_static_check(tmp_path, runner):
    r = runner(static_check=False)
    result = r.start(write_policy(tmp_path, 'return (1, 1)', header='import subprocess'), CONTEXT)
    assert not result.ok and result.kind == 'violation' and 'import of subprocess' in result.reason


def test_writes_only_inside_scratch_even_when_swallowed(tmp_path, runner):
    outside = tmp_path / 'outside.npy'
    body = f'''
np.save('inside.npy', np.zeros(3))          # the scratch folder is the working directory: allowed
try:
    np.save({str(outside)!r}, np.zeros(3))
except Exception:
    pass                                    # swallowing the refusal does not help
return (1.0, 2.0)'''
    r = runner()
    assert r.start(write_policy(tmp_path, body, header='import numpy as np'), CONTEXT).ok
    result = r.act(observation())
    assert not result.ok and result.kind == 'violation' and 'outside the scratch folder' in result.reason
    assert not outside.exists()
    assert (r.scratch / 'inside.npy').exists()


@pytest.mark.parametrize('body,needle', [
    ("return (float('nan'), 1.0)", 'non-finite'),
    ("return 'left'", 'must return (x, y)'),
    ('return (1.0, 2.0, 3.0)', '2 numbers'),
    ('return None', 'must return (x, y)'),
])
def test_garbage_output_is_an_invalid_action(tmp_path, runner, body, needle):
    r = runner()
    assert r.start(write_policy(tmp_path, body), CONTEXT).ok
    result = r.act(observation())
    assert not result.ok and result.kind == 'invalid_action' and needle in result.reason
    assert not result.fatal and r.alive


def test_exception_is_reported_and_process_survives(tmp_path, runner):
    r = runner()
    assert r.start(write_policy(tmp_path, 'return 1 / 0'), CONTEXT).ok
    result = r.act(observation())
    assert not result.ok and result.kind == 'exception' and 'ZeroDivisionError' in result.reason
    assert r.alive


def test_exception_in_reset_and_at_load(tmp_path, runner):
    bad_reset = write_policy(tmp_path, 'return (1, 1)', reset_body="raise RuntimeError('no reset')")
    result = runner().start(bad_reset, CONTEXT)
    assert not result.ok and 'no reset' in result.reason
    bad_load = write_policy(tmp_path, 'return (1, 1)', header="raise ImportError('broken module')",
                            name='b.py')
    result = runner().start(bad_load, CONTEXT)
    assert not result.ok and result.fatal and 'broken module' in result.reason


def test_slow_step_misses_deadline_and_holds(tmp_path, runner):
    body = '''
self.calls += 1
if self.calls == 1:
    total = 0
    for i in range(3_000_000):
        total += i
return (10.0, 20.0)'''
    r = runner(step_deadline_s=0.02, hang_timeout_s=20)
    assert r.start(write_policy(tmp_path, body, reset_body='self.calls = 0'), CONTEXT).ok
    first = r.act(observation(0))
    assert first.ok and first.held and first.kind == 'deadline'
    results = [r.act(observation(i)) for i in range(1, 400)]
    assert all(x.ok for x in results)
    assert any(x.action == (10.0, 20.0) for x in results)
    assert r.missed_deadlines >= 1


def test_restart_replays_reports_after_a_fatal_failure(tmp_path, runner):
    path = tmp_path / 'good.py'
    path.write_text(GOOD)
    r = runner()
    assert r.start(path, CONTEXT).ok
    r._kill()
    assert r.act(observation()).fatal
    reports = [AttemptReport(attempt=1, score=0.1, success=False, reason='crash', steps=3)]
    assert r.restart(reports).ok
    assert r.act(observation()).action == (257.0, 101.0)
