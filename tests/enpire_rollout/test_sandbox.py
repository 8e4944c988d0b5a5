"""The policy sandbox against hostile policies: every break-out ends the attempt with a clear reason."""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from enpire_rollout.policy_contract import AttemptReport, Observation
from enpire_rollout.policy_runtime import trial_context
from enpire_rollout.sandbox import PolicyRunner, SandboxLimits, static_check

CONTEXT = trial_context('pusht', attempts=2, steps_per_attempt=10, control_hz=10.0, cameras=['top'],
                        seed=3)

GOOD = '''
import numpy as np
from enpire_task_pusht.policy_tools import GOAL_POSE

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


def test_the_weaker_python_guard_mode_still_runs(tmp_path, runner):
    path = tmp_path / 'good.py'
    path.write_text(GOOD)
    r = runner(os_sandbox=False)
    assert r.start(path, CONTEXT).ok and r.act(observation()).action == (256.0, 101.0)
    assert 'os_boundary' not in r.hardening


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


@pytest.mark.parametrize('body,needle', [
    ("return (float('nan'), 1.0)", 'non-finite'),
    ("return 'left'", 'must return 2 numbers'),
    ('return (1.0, 2.0, 3.0)', '2 numbers'),
    ('return None', 'must return 2 numbers'),
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


# ------------------------------------------------------------------ the OS boundary, Python layers off
UNGUARDED = dict(static_check=False, guard_imports=False, audit_hook=False)
CANARY = 'sk-ant-api03-CANARY' + 'x' * 40


def hostile_act(make_runner, tmp_path, body: str, header: str = 'import random\nimport typing', **limits):
    # A generous step deadline unless a test is about deadlines: on a loaded machine a slow answer must
    # not pass for the refusal the test waits to read.
    r = make_runner(**{**UNGUARDED, 'step_deadline_s': 2.0, **limits})
    start = r.start(write_policy(tmp_path, body, header=header, name=f'h{abs(hash(body))}.py'), CONTEXT)
    assert start.ok, start
    return r, r.act(observation())


def test_the_os_boundary_is_active_here(tmp_path, runner):
    path = tmp_path / 'good.py'
    path.write_text(GOOD)
    r = runner()
    assert r.start(path, CONTEXT).ok
    assert r.hardening['os_boundary'] and r.hardening['seccomp_denied'] > 40
    assert r.hardening['uid'] != 0 and r.hardening['RLIMIT_NPROC'] == 0


@pytest.mark.parametrize('body,needle', [
    # the audit hook switched off from inside, then plain writes: the mount view refuses them (/tmp is
    # absent from the view, or read-only where the checkout itself lies under /tmp)
    ("typing.sys.modules['__main__']._locked = False\nnp = typing.sys.modules['numpy']\n"
     "np.save('/tmp/evil.npy', np.zeros(3))", ('No such file', 'Read-only file system')),
    ("random._os.open('/usr/evil', random._os.O_CREAT | random._os.O_WRONLY)", 'Read-only file system'),
    ("d = random._os.open('/usr', random._os.O_RDONLY)\nrandom._os.mkdir('evil', dir_fd=d)",
     'Read-only file system'),
    ("d = random._os.open('/usr', random._os.O_RDONLY)\nrandom._os.symlink('/x', 'evil', dir_fd=d)",
     'Read-only file system'),
    ("random._os.mkfifo('/scratch/fifo')", 'Operation not permitted'),
    ("random._os.mknod('/scratch/node')", 'Operation not permitted'),
    ("typing.sys.modules['_socket'].socket()", 'Operation not permitted'),
    ("random._os.execv('/usr/bin/true', ['true'])", 'Operation not permitted'),
    ("random._os.kill(1, 9)", 'Operation not permitted'),
    ("random._os.fork()", 'Resource temporarily unavailable'),
])
def test_os_boundary_holds_with_the_python_layers_off(tmp_path, runner, body, needle):
    r, result = hostile_act(runner, tmp_path, body + '\nreturn (1.0, 1.0)')
    needles = needle if isinstance(needle, tuple) else (needle,)
    assert not result.ok and any(n in result.reason for n in needles), result
    assert not list(tmp_path.glob('evil*')) and not Path('/tmp/evil.npy').exists()


def test_no_secret_in_reach_of_a_policy(tmp_path, runner, monkeypatch):
    monkeypatch.setenv('ANTHROPIC_API_KEY', CANARY)
    monkeypatch.setenv('LAB_DB_PASSWORD', 'hunter2-canary-password')
    body = ("env = dict(random._os.environ)\n"
            "pids = [f for f in random._os.listdir('/proc') if f.isdigit()]\n"
            "texts = []\nfor p in pids + ['self']:\n"
            "    try:\n        texts.append(open(f'/proc/{p}/environ').read())\n"
            "    except OSError as exc:\n        texts.append(repr(exc))\n"
            "raise RuntimeError(repr(env) + repr(texts) + 'sk-proj-' + 'A' * 30)")
    header = 'import random\nimport typing\nopen = typing.sys.modules["builtins"].open'
    r, result = hostile_act(runner, tmp_path, body, header=header)
    assert not result.ok and 'RuntimeError' in result.reason
    assert CANARY not in result.reason and 'hunter2' not in result.reason
    assert 'sk-proj-AAAA' not in result.reason and '[redacted]' in result.reason
    assert 'LANG' in result.reason and 'ANTHROPIC' not in result.reason   # an allow-list, nothing inherited


def test_sibling_sandboxes_cannot_see_read_or_signal_each_other(tmp_path, runner):
    a = runner()
    keeper = write_policy(tmp_path, 'return (1.0, 1.0)', header='import numpy as np',
                          reset_body="np.save('/scratch/private.npy', np.arange(3))", name='a.py')
    assert a.start(keeper, CONTEXT).ok
    body = (f"try:\n    random._os.kill({a.proc.pid}, 9)\nexcept OSError as exc:\n    killed = repr(exc)\n"
            "procs, mine = random._os.listdir('/proc'), random._os.listdir('/scratch')\n"
            "raise RuntimeError(f'{procs} {mine} {killed}')")
    b, result = hostile_act(runner, tmp_path, body)
    assert 'private.npy' not in result.reason, result
    assert 'Operation not permitted' in result.reason, result
    assert str(a.proc.pid) not in result.reason.split('[redacted]')[0].split(']')[0]
    assert a.alive and a.act(observation()).ok
    assert a.hardening['uid'] != b.hardening['uid']


@pytest.mark.parametrize('frame,needle', [
    ("struct.pack('!i', 1000) + b'x' * 10", 'late frame'),
    ("struct.pack('!i', 2**31 - 1)", 'oversized frame'),
    ("struct.pack('!i', -7)", 'malformed frame'),
    ("struct.pack('!i', 5) + b'nope!'", 'garbage on the answer pipe'),
])
def test_forged_answer_frames_end_the_attempt_quickly(tmp_path, runner, frame, needle):
    body = (f"struct = typing.sys.modules['struct']\nfd = int(typing.sys.argv[2])\n"
            f"random._os.write(fd, {frame})\nwhile True:\n    pass")
    r, result = hostile_act(runner, tmp_path, body, step_deadline_s=0.05, hang_timeout_s=30)
    results = [result] + [r.act(observation()) for _ in range(20) if r.alive]
    final = next(x for x in results if not x.ok)
    assert final.fatal and final.kind == 'violation' and needle in final.reason, final
    assert not r.alive and r.proc.poll() is not None


def test_an_unexpected_error_in_the_runner_is_an_attempt_failure(tmp_path, runner, monkeypatch):
    path = tmp_path / 'good.py'
    path.write_text(GOOD)
    r = runner()
    assert r.start(path, CONTEXT).ok
    monkeypatch.setattr(r, '_call', lambda *a, **k: (_ for _ in ()).throw(ValueError('boom')))
    result = r.act(observation())
    assert not result.ok and result.fatal and 'sandbox runner error: ValueError: boom' in result.reason
    monkeypatch.undo()
    assert r.restart([]).ok and r.act(observation()).ok


def test_only_the_weights_files_a_policy_names_are_in_its_view(tmp_path, runner):
    import numpy as np
    folder = tmp_path / 'private_0700'
    folder.mkdir(mode=0o700)
    named, unnamed, closed = folder / 'w.npz', folder / 'other.npz', folder / 'closed.npz'
    for path in (named, unnamed, closed):
        np.savez(path, a=np.arange(3))
    named.chmod(0o644)
    unnamed.chmod(0o644)
    closed.chmod(0o600)                       # not readable by everyone: never bound
    built = f"{str(unnamed)[:-4]!r} + '.npz'"      # a path built at run time names no file to bind
    body = (f"seen = [random._os.path.exists(p) for p in ({built}, {str(closed)!r})]\n"
            f"data = np.load({str(named)!r})['a'].tolist()\n"
            f"return (float(sum(data)), float(sum(seen)))  # {str(closed)!r}")
    r = runner(data_dirs=(str(tmp_path),))
    assert r.start(write_policy(tmp_path, body, header='import numpy as np\nimport random'), CONTEXT).ok
    assert r.act(observation()).action == (3.0, 0.0)
    elsewhere = runner(data_dirs=('/nonexistent',))
    assert elsewhere.start(write_policy(tmp_path, body, header='import numpy as np\nimport random',
                                        name='p2.py'), CONTEXT).ok
    result = elsewhere.act(observation())
    assert not result.ok and 'No such file' in result.reason


def test_a_child_that_stops_reading_requests_cannot_wedge_the_runner(tmp_path, runner):
    body = ("conn = typing.sys.modules['multiprocessing.connection'].Connection\n"
            "conn.recv_bytes = lambda self, *a: [x for x in iter(int, 1)]\n"
            'return (1.0, 1.0)')
    r, first = hostile_act(runner, tmp_path, body, step_deadline_s=0.05, hang_timeout_s=60)
    assert first.ok
    big = observation()
    big.frames = {'top': np.zeros((400, 400, 3), np.uint8)}     # more than a pipe's buffer
    started = time.monotonic()
    results = [r.act(big) for _ in range(3)]
    final = next(x for x in results if not x.ok)
    assert final.fatal and 'stopped reading its requests' in final.reason, final
    assert time.monotonic() - started < 10 and not r.alive


def test_the_checked_source_runs_even_when_the_file_is_swapped(tmp_path, runner):
    checked = write_policy(tmp_path, 'return (1.0, 1.0)', name='checked.py').read_text()
    path = write_policy(tmp_path, 'return (9.0, 9.0)', name='checked.py')      # swapped after the check
    r = runner()
    assert r.start(path, CONTEXT, checked).ok and r.act(observation()).action == (1.0, 1.0)
    r._kill()
    assert r.restart([]).ok and r.act(observation()).action == (1.0, 1.0)


# ------------------------------------------------------------------ a wider hostile corpus
FORGE = ("fd = int(typing.sys.argv[2])\npayload = {payload}\n"
         "random._os.write(fd, len(payload).to_bytes(4, 'big') + payload)\nwhile True:\n    pass")


@pytest.mark.parametrize('payload,kind,needle', [
    ("b'[' * 200000", 'violation', 'garbage on the answer pipe'),          # the decoder's recursion limit
    ("b'{\"ok\": true, \"seq\": 2, \"action\": [1' + b'0' * 400 + b', 1]}'", 'invalid_action', 'invalid'),
    ("b'{\"ok\": true, \"seq\": 2, \"action\": [1' + b'0' * 5000 + b', 1]}'", 'violation', 'garbage'),
    ("b'{\"ok\": true, \"seq\": 2, \"action\": [true, false]}'", 'invalid_action', 'invalid action'),
    ("b'{\"ok\": true, \"seq\": 2, \"action\": [Infinity, 1]}'", 'invalid_action', 'invalid action'),
    ("b'{\"ok\": true, \"seq\": 2, \"action\": [[1], {\"a\": 1}]}'", 'invalid_action', 'invalid action'),
])
def test_hostile_json_in_an_answer_ends_the_attempt_as_the_policys_fault(tmp_path, runner, payload, kind,
                                                                         needle):
    r, result = hostile_act(runner, tmp_path, FORGE.format(payload=payload), hang_timeout_s=30)
    assert not result.ok and result.kind == kind and needle in result.reason, result
    assert 'sandbox runner error' not in result.reason


def test_a_forged_answer_of_another_kind_is_still_a_plain_result(tmp_path, runner):
    payload = "b'{\"ok\": true, \"seq\": 2, \"kind\": [\"x\"], \"action\": [1.5, 2.5]}'"
    r, result = hostile_act(runner, tmp_path, FORGE.format(payload=payload), hang_timeout_s=30)
    assert result.ok and result.action == (1.5, 2.5) and result.kind == "['x']", result


def test_hangs_while_loading_and_in_reset_end_the_attempt_in_time(tmp_path, runner):
    r = runner(**UNGUARDED, startup_timeout_s=2.0)
    started = time.monotonic()
    result = r.start(write_policy(tmp_path, 'return (1.0, 1.0)', header='import time\ntime.sleep(3600)',
                                  name='slow_import.py'), CONTEXT)
    assert not result.ok and result.fatal and 'did not load within 2 s' in result.reason, result
    assert time.monotonic() - started < 15 and r.proc.poll() is not None
    r = runner(**UNGUARDED, call_timeout_s=1.0)
    result = r.start(write_policy(tmp_path, 'return (1.0, 1.0)', reset_body='while True:\n    pass',
                                  name='spin_reset.py'), CONTEXT)
    assert not result.ok and result.fatal and 'hang: reset gave no answer' in result.reason, result
    assert r.proc.poll() is not None


LOOK_AROUND = '''
found = {}
found['fds'] = sorted(int(f) for f in random._os.listdir('/proc/self/fd'))
found['pids'] = sorted(p for p in random._os.listdir('/proc') if p.isdigit())
found['top'] = sorted(random._os.listdir('/'))
try:
    found['etc'] = sorted(random._os.listdir('/etc'))
except OSError as exc:
    found['etc'] = type(exc).__name__
private = ('/root/.ssh', '/etc/shadow', '/tmp', '/home', '/run', '/var', '/work/shared')
found['ssh'] = [p for p in private if random._os.path.exists(p)]
for path in ('/dev/shm/x', '/proc/self/oom_score_adj', '/proc/self/mem', '/proc/sys/kernel/hostname',
             '/proc/1/environ', '/dev/null', '/scratch/ok'):
    try:
        with open(path, 'wb') as f:
            f.write(b'1')
        found[path] = 'written'
    except OSError as exc:
        found[path] = type(exc).__name__
for fd in found['fds'][3:]:                 # the descriptors it inherited: only its two pipes
    try:
        random._os.write(fd, b'')
        found[fd] = 'writable'
    except OSError as exc:
        found[fd] = type(exc).__name__
try:
    typing.sys.modules['threading'].Thread(target=print).start()
    found['thread'] = 'started'
except RuntimeError:
    found['thread'] = 'refused'
try:
    while True:
        random._os.write(1, b'x' * 65536)       # stdout is a file outside: capped by RLIMIT_FSIZE
except OSError as exc:
    found['flood'] = exc.errno
raise RuntimeError(repr(found))
'''


def test_the_view_has_no_stray_descriptor_and_no_writable_place_but_scratch(tmp_path, runner):
    header = 'import random\nimport typing\nopen = typing.sys.modules["builtins"].open'
    r, result = hostile_act(runner, tmp_path, LOOK_AROUND, header=header, file_mb=2)
    assert "RuntimeError: " in result.reason, result
    found = eval(result.reason.split('RuntimeError: ', 1)[1].rsplit(' (', 1)[0])   # noqa: S307 (own test)
    assert len(found['fds']) == 6, found        # stdin, stdout, stderr, listdir's own, the two pipes
    assert found['pids'] == ['1', '2'], found        # bwrap and the policy: no other process is visible
    assert found['etc'] in (['ld.so.cache'], 'PermissionError'), found
    # a private place is in the view only as a folder leading to a bound file (a checkout under /tmp)
    from enpire_rollout import os_sandbox
    dests = [dest for _, dest in os_sandbox.runtime_view()['binds']]
    assert all(any(d.startswith(p + '/') for d in dests) for p in found['ssh']), (found, dests)
    assert '/root/.ssh' not in found['ssh'] and '/etc/shadow' not in found['ssh'], found
    assert found['/scratch/ok'] == 'written' and found['/dev/null'] == 'written', found
    for path in ('/dev/shm/x', '/proc/self/oom_score_adj', '/proc/self/mem', '/proc/sys/kernel/hostname',
                 '/proc/1/environ'):
        assert found[path] in ('OSError', 'PermissionError', 'FileNotFoundError'), (path, found)
    assert found['thread'] == 'refused' and found['flood'] == 27, found      # EFBIG
    log = Path(r.scratch) / 'policy.log'
    assert log.stat().st_size <= 2 * 1024 * 1024


def test_a_flood_of_stale_answers_holds_the_runner_no_longer_than_its_deadline():
    import os
    import subprocess
    import sys

    from enpire_rollout.answer_pipe import AnswerPipe
    read_fd, write_fd = os.pipe()
    # Another process writes stale answers, half a batch at a time: the reader always holds a frame
    # begun, never an idle pipe.
    flood = ("import json, os, sys, time\nfd = int(sys.argv[1])\n"
             "p = json.dumps({'ok': True, 'seq': 0, 'action': [1, 1]}).encode()\n"
             "frames = (len(p).to_bytes(4, 'big') + p) * 300\nhalf = len(frames) // 2 + 7\n"
             "stop = time.monotonic() + 8\nwhile time.monotonic() < stop:\n"
             "    os.write(fd, frames[:half])\n    os.write(fd, frames[half:])\n")
    writer = subprocess.Popen([sys.executable, '-c', flood, str(write_fd)], pass_fds=(write_fd,),
                              stderr=subprocess.DEVNULL)
    os.close(write_fd)
    r = PolicyRunner(SandboxLimits())
    r._in = AnswerPipe(read_fd, frame_timeout_s=0.25)
    try:
        assert r._in.read(10.0) is not None          # the flood has begun
        started = time.monotonic()
        assert r._poll_answer(5, 0.2) is None
        assert time.monotonic() - started < 2.0
    finally:
        writer.kill()
        writer.wait()
        os.close(read_fd)


@pytest.mark.skipif(__import__('platform').machine() != 'x86_64', reason='i386 system calls of x86_64')
def test_a_system_call_of_another_architecture_kills_the_policy(tmp_path, runner):
    body = ("ct = typing.sys.modules['ctypes']\nlibc = ct.CDLL(None)\nlibc.mmap.restype = ct.c_void_p\n"
            "libc.mmap.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int, ct.c_int, ct.c_int, ct.c_long]\n"
            "addr = libc.mmap(None, 4096, 7, 0x22, -1, 0)\n"
            "code = bytes([0xb8, 41, 0, 0, 0, 0xcd, 0x80, 0xc3])      # i386 dup() through int 0x80\n"
            "ct.memmove(addr, code, len(code))\nct.CFUNCTYPE(ct.c_int)(addr)()\nreturn (1.0, 1.0)")
    r, result = hostile_act(runner, tmp_path, body)
    assert not result.ok and result.fatal and 'SIGSYS' in result.reason, result


def test_a_policy_changes_only_its_own_copies_of_what_it_is_given(tmp_path, runner):
    body = ("observation.frames['top'][:] = 255\nobservation.agent_position[:] = 1e9\n"
            "np.zeros = None\ntyping.sys.modules['json'].dumps = None\nreturn (1.0, 1.0)")
    r, result = hostile_act(runner, tmp_path, body, header='import typing\nimport numpy as np')
    # it broke its own answer path: its process ends, the runner names it
    assert not result.ok and result.fatal and result.kind == 'crash' and 'TypeError' in result.reason, result
    given = observation()
    r2, second = hostile_act(runner, tmp_path, body.replace("typing.sys.modules['json'].dumps = None\n", ''),
                             header='import typing\nimport numpy as np')
    assert second.ok and second.action == (1.0, 1.0)
    assert r2.act(given).ok                       # pickled across: the runner's arrays stay as they were
    assert not given.frames['top'].any() and not given.agent_position.any() and np.zeros(2).shape == (2,)


def test_scratch_lasts_as_long_as_the_policys_process(tmp_path, runner):
    body = ("if random._os.path.exists('/scratch/mark'):\n    return (2.0, 2.0)\n"
            "random._os.close(random._os.open('/scratch/mark', random._os.O_CREAT | random._os.O_WRONLY))\n"
            "return (1.0, 1.0)")
    r, first = hostile_act(runner, tmp_path, body)
    assert first.action == (1.0, 1.0) and r.act(observation()).action == (2.0, 2.0)     # across attempts
    assert r.restart([]).ok and r.act(observation()).action == (1.0, 1.0)              # fresh after a restart
    other, fresh = hostile_act(runner, tmp_path, body)
    assert fresh.action == (1.0, 1.0)                                                  # and per trial
    assert not list(Path(r.scratch).glob('mark'))          # the host's scratch folder only holds the log
