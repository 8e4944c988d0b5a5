"""The run_trial action on the simulated cell (sim + safety + verify + reset + trial server, as-fast)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest
from action_msgs.msg import GoalStatus
from enpire_common import names
from enpire_common.action_client import ActionClient
from rosbags.rosbag2 import Reader

from enpire_interfaces.action import RunTrial
from enpire_interfaces.msg import CellState, Command, SafetyEvent
from enpire_rollout.trial_bag import (
    METADATA_TOPIC,
    bag_custom_data,
    list_trials,
    recover_unfinished,
    typestore,
)
from tests.graph_harness import NodeProcesses, RosTestNode, start_cell_nodes

pytestmark = pytest.mark.graph
NS = 'cell_0'

MOVER = '''
import numpy as np

class Policy:
    def reset(self, context):
        self.failures = []

    def act(self, observation):
        x, y = observation.agent_position
        return (float(np.clip(x + 5.0, 20, 490)), float(y))

    def on_attempt_failed(self, report):
        self.failures.append(report.score)
'''
# Pushes right in attempt 1. After a failure it asks for a point off the table that spells out the
# report it heard (x: attempt and steps, y: score); the safety node clamps that point onto the table.
REPORT_ECHO = '''
import numpy as np

class Policy:
    def reset(self, context):
        self.report = None

    def act(self, observation):
        if self.report is not None:
            return (1000.0 * self.report.attempt + self.report.steps, 1000.0 + 1000.0 * self.report.score)
        x, y = observation.agent_position
        return (float(np.clip(x + 5.0, 20, 490)), float(y))

    def on_attempt_failed(self, report):
        self.report = report
'''


def echo_of(attempt: int, steps: int, score: float) -> tuple[float, float]:
    return 1000.0 * attempt + steps, 1000.0 + 1000.0 * score


def policy_source(act_body: str, header: str = '') -> str:
    return (f'{header}\n\nclass Policy:\n    def reset(self, context):\n        pass\n\n'
            f'    def act(self, observation):\n{textwrap.indent(textwrap.dedent(act_body), " " * 8)}\n\n'
            '    def on_attempt_failed(self, report):\n        pass\n')


HANG = policy_source('while True:\n    pass')
# Planted in the trial server's environment: no reason, event, log, bag or index may ever hold them.
CANARIES = {'OPENAI_API_KEY': 'sk-proj-CANARYopenai' + 'q' * 30,
            'ANTHROPIC_API_KEY': 'sk-ant-CANARY' + 'z' * 30, 'LAB_SECRET_TOKEN': 'canary-lab-token-7f3a9c'}


def start_trial_server(procs, bag_dir):
    return start_cell_nodes(procs, NS, bag_dir=bag_dir, only={'trial_server'}, env=CANARIES,
                            label=lambda node: 'trial_server', parameters={'trial_server': {
                                'hang_timeout_s': 1.0, 'verify_every_n_steps': 0}})['trial_server']


def start_recorder(procs):
    return start_cell_nodes(procs, NS, bag_dir=None, only={'recorder'}, label=lambda node: 'recorder',
                            parameters={'recorder': {'record_camera_period_s': 0.0}})['recorder']


def assert_no_canary(cell, *texts: str) -> None:
    """Not in the given texts (reasons), the server's log, any bag file or the index."""
    bags = cell['tmp'] / 'bags'
    files = [f for f in bags.rglob('*') if f.is_file()] + [cell['procs'].log_dir / 'trial_server.log']
    for canary in CANARIES.values():
        assert not any(canary in t for t in texts), texts
        for f in files:
            assert canary.encode() not in f.read_bytes(), f


@pytest.fixture(scope='module')
def cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cell')
    procs = NodeProcesses(tmp / 'logs')
    start_cell_nodes(procs, NS, bag_dir=tmp / 'bags', only={'sim', 'safety', 'verify', 'reset'},
                     label=lambda node: node.name)
    recorder = start_recorder(procs)
    server = start_trial_server(procs, tmp / 'bags')
    ros = RosTestNode('rollout_test_client')
    client = ActionClient(ros.node, RunTrial, names.cell_name(NS, names.RUN_TRIAL))
    assert client.wait_for_server(timeout_sec=30), 'run_trial never appeared'
    ros.wait_taking_goals(client, goal(tmp, attempts=0))
    yield {'procs': procs, 'ros': ros, 'client': client, 'tmp': tmp, 'server': server, 'recorder': recorder}
    ros.close()
    procs.stop_all()


def policy_file(tmp, name, source):
    path = tmp / name
    path.write_text(source)
    return str(path), hashlib.sha256(source.encode()).hexdigest()


def goal(tmp, source=MOVER, name='mover.py', **kw):
    path, sha = policy_file(tmp, name, source)
    values = dict(task='pusht', policy_path=path, policy_sha256=sha, seed=3, distribution='in_distribution',
                  attempts=2, steps_per_attempt=15, time_budget_s=0.0, record=True)
    values.update(kw)
    return RunTrial.Goal(**values)


def run(cell, g, timeout=90, cancel_after_step=None):
    ros, client = cell['ros'], cell['client']
    feedback = []

    def accepted():
        # A goal refused as busy never ran: sent again (a start-up probe may hold the cell a moment).
        handle = ros.wait_future(
            client.send_goal_async(g, feedback_callback=lambda f: feedback.append(f.feedback)),
            timeout=30, what='goal answered')
        return handle if handle.accepted else None
    handle = ros.wait_for(accepted, 60, 'goal accepted')
    if cancel_after_step is not None:
        ros.wait_for(lambda: any(f.step >= cancel_after_step for f in feedback), timeout=60, what='steps')
        ros.wait_future(handle.cancel_goal_async())
    res = ros.wait_future(handle.get_result_async(), timeout=timeout, what='trial result')
    return res.status, res.result, feedback


def topic(name: str) -> str:
    return names.cell_name(NS, name)


def bag_messages(bag_path: str, topics: set[str]) -> list[tuple[str, object]]:
    """(topic, message) of the bag's messages on `topics` in cell-time order: by header stamp, a trial event
    before the commands of its stamp (the log time is when the recorder took each message, and messages of
    different topics sent together may be taken in either order)."""
    store = typestore()
    with Reader(bag_path) as reader:
        wanted = [c for c in reader.connections if c.topic in topics]
        stamped = [(t, c.topic, store.deserialize_cdr(raw, c.msgtype))
                   for c, t, raw in reader.messages(connections=wanted)]

    def cell_time(item):
        _t, name, msg = item
        header = getattr(msg, 'header', None)
        stamp = header.stamp.sec * 10**9 + header.stamp.nanosec if header is not None else -1
        return stamp, name != topic(names.TRIAL_EVENTS)
    return [(name, msg) for _, name, msg in sorted(stamped, key=cell_time)]


def policy_commands_by_attempt(messages: list[tuple[str, object]]) -> dict[int, list[tuple[float, float]]]:
    """The policy's commands (before safety) between each attempt's start and verification events."""
    commands: dict[int, list[tuple[float, float]]] = {}
    attempt = None
    for name, msg in messages:
        if name == topic(names.TRIAL_EVENTS):
            attempt = msg.attempt if msg.event == 'attempt_started' else None
        elif name == topic(names.POLICY_COMMAND) and attempt is not None:
            commands.setdefault(attempt, []).append(tuple(float(v) for v in msg.values))
    return commands


def test_only_the_safety_node_commands_the_cell(cell):
    """The cell's command input has one publisher, the safety node; the trial server publishes the
    policy's command to the safety node's input and nowhere else."""
    node, ros = cell['ros'].node, cell['ros']

    def writers(name):
        # Node names arrive with discovery a little after the endpoints: wait until all are known.
        found = node.get_publishers_info_by_topic(topic(name))
        return found if found and all(w.node_name != '_NODE_NAME_UNKNOWN_' for w in found) else None
    command = ros.wait_for(lambda: writers(names.CELL_COMMAND), 15, 'the cell command publishers')
    assert [(w.node_namespace, w.node_name) for w in command] == [(f'/{NS}', 'safety')], command
    policy = ros.wait_for(lambda: writers(names.POLICY_COMMAND), 15, 'the policy command publishers')
    assert [(w.node_namespace, w.node_name) for w in policy] == [(f'/{NS}', 'trial_server')], policy


def test_parameters_refuse_nonsense_and_companions_advertise_no_services(cell):
    """Over the graph: a run-time parameter outside its range or not finite is refused with the reason, a
    start-up one is read-only; the on-demand companion nodes exist but offer no service at all."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, SetParameters

    ros = cell['ros']

    def set_parameter(node_name: str, name: str, value) -> object:
        kind = ParameterType.PARAMETER_DOUBLE if isinstance(value, float) else ParameterType.PARAMETER_STRING
        field = 'double_value' if isinstance(value, float) else 'string_value'
        client = ros.node.create_client(SetParameters, f'/{NS}/{node_name}/set_parameters')
        try:
            assert client.wait_for_service(timeout_sec=30), node_name
            request = SetParameters.Request(parameters=[ParameterMsg(
                name=name, value=ParameterValue(type=kind, **{field: value}))])
            return ros.call(client, request, timeout=30).results[0]
        finally:
            ros.node.destroy_client(client)

    for node_name, name, value, needle in [
            ('trial_server', 'step_deadline_s', -5.0, 'out of range'),
            ('trial_server', 'hang_timeout_s', float('nan'), 'hang_timeout_s'),
            ('trial_server', 'bag_dir', '/elsewhere', 'read-only'),
            ('verify', 'max_frame_age', float('nan'), 'max_frame_age'),
            ('verify', 'fusion_rule', 'whatever', 'not in'),
            ('verify', 'backend', 'yolo', 'read-only'),
            ('reset', 'config_file', '/x.yaml', 'read-only')]:
        result = set_parameter(node_name, name, value)
        assert not result.successful and needle in result.reason, (node_name, name, result.reason)
    accepted = set_parameter('trial_server', 'frame_wait_s', 0.05)
    assert accepted.successful, accepted.reason

    describe = ros.node.create_client(DescribeParameters, f'/{NS}/trial_server/describe_parameters')
    assert describe.wait_for_service(timeout_sec=30)
    found = ros.call(describe, DescribeParameters.Request(
        names=['step_deadline_s', 'bag_dir']), timeout=30).descriptors
    ros.node.destroy_client(describe)
    assert found[0].floating_point_range and found[0].description and not found[0].read_only
    assert found[1].read_only and found[1].description

    def companions():
        return [n for n, ns in ros.node.get_node_names_and_namespaces()
                if ns == f'/{NS}' and n.endswith('_on_demand')]
    assert set(ros.wait_for(lambda: len(companions()) >= 2 and companions(), 30, 'companion nodes')) >= {
        'trial_server_on_demand', 'verify_on_demand'}
    for name in companions():
        assert ros.node.get_service_names_and_types_by_node(name, f'/{NS}') == [], name
    assert ros.node.get_service_names_and_types_by_node('trial_server', f'/{NS}')   # the parent has them


def test_without_an_os_sandbox_agent_code_is_refused_unless_the_weaker_mode_is_accepted(cell):
    """A machine without bubblewrap (ENPIRE_BWRAP names none): refused; accepted, a loud warning per trial."""
    procs, ros, tmp = cell['procs'], cell['ros'], cell['tmp']
    servers = {}
    for ns, accept in (('cell_nobwrap', 'false'), ('cell_weaker', 'true')):
        servers[ns] = procs.start(f'trial_server_{ns}', [
            '-m', 'enpire_rollout.trial_server_node', '--ros-args', '-r', f'__ns:=/{ns}',
            '-p', f'bag_dir:={tmp / ns}', '-p', f'accept_weaker_sandbox:={accept}'],
            env={**CANARIES, 'ENPIRE_BWRAP': '/nonexistent/bwrap'})
    clients = {ns: ActionClient(ros.node, RunTrial, names.cell_name(ns, names.RUN_TRIAL)) for ns in servers}
    try:
        for client in clients.values():
            assert client.wait_for_server(timeout_sec=60)
            ros.wait_taking_goals(client, goal(tmp, attempts=0))
        refused = run({**cell, 'client': clients['cell_nobwrap']},
                      goal(tmp, attempts=1, steps_per_attempt=2))[1]
        assert 'no OS sandbox' in refused.failure_reason and 'accept_weaker_sandbox' in refused.failure_reason
        for _ in range(2):   # no cell behind it: each trial fails at its reset, after the warning
            run({**cell, 'client': clients['cell_weaker']}, goal(tmp, attempts=1, steps_per_attempt=2,
                                                                 record=False), timeout=120)
        log = procs.log('trial_server_cell_weaker')
        assert log.count('NO OS SANDBOX') == 3, log      # at start-up, then once per trial
    finally:
        for client in clients.values():
            client.destroy()
        for proc in servers.values():
            procs.kill(proc, signal.SIGINT)


BROKEN_TASK = '''"""Push-T under another name, with a command rule whose settings do not load."""
import dataclasses

from enpire_task_pusht.task import TASK as PUSHT


def command_filter(limits_file):
    raise ValueError('tool_limits: every workspace_low must be below its workspace_high')


TASK = dataclasses.replace(PUSHT, name='broken_settings', command_filter='enpire_broken_task:command_filter')
'''


def test_a_task_whose_settings_do_not_load_is_refused_with_the_reason(cell):
    """A trial whose task cannot be set up on the cell (here its command rule's settings do not load: a lab's
    broken limits file) ends refused with the reason, not as a goal ended with none; the server carries on."""
    procs, ros, tmp = cell['procs'], cell['ros'], cell['tmp']
    package = tmp / 'broken_task'
    (package / 'enpire_broken_task-0.0.dist-info').mkdir(parents=True)
    (package / 'enpire_broken_task.py').write_text(BROKEN_TASK)
    (package / 'enpire_broken_task-0.0.dist-info/METADATA').write_text(
        'Metadata-Version: 2.1\nName: enpire-broken-task\nVersion: 0.0\n')
    (package / 'enpire_broken_task-0.0.dist-info/entry_points.txt').write_text(
        '[enpire.tasks]\nbroken_settings = enpire_broken_task:TASK\n')
    ns = 'cell_broken_task'
    server = procs.start(f'trial_server_{ns}', [
        '-m', 'enpire_rollout.trial_server_node', '--ros-args', '-r', f'__ns:=/{ns}',
        '-p', f'bag_dir:={tmp / ns}'],
        env={**CANARIES, 'PYTHONPATH': os.pathsep.join([str(package), os.environ.get('PYTHONPATH', '')])})
    client = ActionClient(ros.node, RunTrial, names.cell_name(ns, names.RUN_TRIAL))
    try:
        assert client.wait_for_server(timeout_sec=60)
        ros.wait_taking_goals(client, goal(tmp, attempts=0))
        for _ in range(2):    # and again: the server carries on
            status, result, _ = run({**cell, 'client': client},
                                    goal(tmp, task='broken_settings', attempts=1, steps_per_attempt=2,
                                         record=False), timeout=120)
            assert not result.success and status == GoalStatus.STATUS_ABORTED
            assert "task 'broken_settings' cannot be set up" in result.failure_reason, result.failure_reason
            assert 'workspace_low' in result.failure_reason
    finally:
        client.destroy()
        procs.kill(server, signal.SIGINT)


def test_full_trial_with_two_attempts_recorded(cell):
    g = goal(cell['tmp'], REPORT_ECHO, 'echo.py')
    status, result, feedback = run(cell, g)
    log = cell['procs'].log('trial_server')[-3000:]
    assert result.failure_reason == '', (result.failure_reason, log)
    assert status == GoalStatus.STATUS_SUCCEEDED
    assert result.attempts_used == 2 and not result.success
    assert len(result.attempt_scores) == 2 and len(result.attempt_reasons) == 2
    assert result.reset_s > 0 and result.execute_s > 0 and result.verify_s > 0
    assert {f.phase for f in feedback} >= {'resetting', 'executing', 'verifying'}
    with Reader(result.bag_path) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts['/cell_0/cmd/policy_target'] >= 30 and counts['/cell_0/cmd/target'] >= 30
    assert counts['/cell_0/cell_state'] >= 30 and counts['/cell_0/trial/verdicts'] == 2
    # Cameras are best effort (sensor-data QoS, as ROS camera drivers offer them): a starved machine may drop
    # a few of the ~31 frames (28 beside two CPU burners); the reliable streams above keep every step.
    assert counts['/cell_0/cameras/top/image_raw'] >= 24 and counts['/trial/metadata'] == 1
    # The cameras' calibration as the cell publishes it: standard TF, and CameraInfo at the bag's start
    # (then only when the intrinsics change).
    assert counts['/tf_static'] >= 1 and counts['/cell_0/cameras/top/camera_info'] == 1
    assert bag_custom_data(result.bag_path)['enpire.status'] == 'finished'

    messages = bag_messages(result.bag_path, {topic(names.TRIAL_EVENTS), topic(names.POLICY_COMMAND),
                                              topic(names.SAFETY_EVENTS), METADATA_TOPIC})
    events = [m.event for name, m in messages if name == topic(names.TRIAL_EVENTS)]
    assert events == ['started', 'reset_done', 'attempt_started', 'attempt_verified',
                      'attempt_started', 'attempt_verified', 'finished']       # one reset, then pass@2

    # Attempt 2 continued with the attempt-1 report: its policy commanded the point that echoes it.
    echo = echo_of(attempt=1, steps=g.steps_per_attempt, score=result.attempt_scores[0])
    commands = policy_commands_by_attempt(messages)
    assert echo not in commands[1] and commands[2][-1] == pytest.approx(echo), commands
    clamped = [m for name, m in messages if name == topic(names.SAFETY_EVENTS)
               and m.kind == SafetyEvent.CLAMPED_WORKSPACE]
    assert clamped and tuple(clamped[-1].requested) == pytest.approx(echo)

    metadata = json.loads(next(m.data for name, m in messages if name == METADATA_TOPIC))
    assert metadata['policy_sha256'] == g.policy_sha256 and metadata['seed'] == g.seed == 3
    assert metadata['policy_source'] == REPORT_ECHO


def test_trial_server_reports_its_trials_on_diagnostics(cell):
    from diagnostic_msgs.msg import DiagnosticArray

    ros = cell['ros']
    seen = []
    sub = ros.node.create_subscription(DiagnosticArray, names.DIAGNOSTICS, lambda m: seen.extend(m.status),
                                       50)
    try:
        run(cell, goal(cell['tmp'], attempts=1, record=False))

        def reported():
            ours = [s for s in seen if s.name == f'/{NS}/trial_server: trials']
            values = {v.key: v.value for v in ours[-1].values} if ours else {}
            done = int(values.get('trials finished', 0)) >= 1 and values.get('running trial') == '-'
            return ours if done else None        # a report from during the trial may still be in flight
        status = ros.wait_for(reported, 15, 'the trial server diagnostics after a trial')[-1]
        assert status.level == b'\x00' and status.message == 'idle' and status.hardware_id == f'/{NS}'
    finally:
        ros.node.destroy_subscription(sub)


def test_invalid_goals_are_refused_with_reasons(cell):
    tmp = cell['tmp']
    secret = tmp / 'root_only.py'
    secret.write_text(MOVER)
    secret.chmod(0o600)
    env_sha = hashlib.sha256(Path('/proc/self/environ').read_bytes()).hexdigest()
    true_sha = goal(tmp).policy_sha256
    cases = [(goal(tmp, task='stack'), 'unknown task'), (goal(tmp, attempts=0), 'attempts'),
             (goal(tmp, policy_sha256='0' * 64), 'sha256 mismatch'),
             (goal(tmp, policy_path=str(tmp / 'nonexistent.py')), 'not found'),
             (goal(tmp, policy_path='/etc/hostname'), 'outside the policy folders'),
             (goal(tmp, policy_path='/proc/self/environ', policy_sha256=env_sha),
              'outside the policy folders'),
             (goal(tmp, policy_path=str(secret), policy_sha256=hashlib.sha256(MOVER.encode()).hexdigest()),
              'not readable by everyone'),
             (goal(tmp, time_budget_s=float('nan')), 'time_budget_s'),
             (goal(tmp, time_budget_s=1e9), 'time_budget_s'),
             (goal(tmp, attempts=2**31 - 1), 'attempts must be an integer in 1..64'),
             (goal(tmp, steps_per_attempt=2**31 - 1), 'steps_per_attempt must be an integer in 1..10000')]
    cases += [(goal(tmp, trial_id=bad), 'trial_id must be') for bad in
              ('../../x', str(tmp / 'abs'), '.', '..', 'a/b/c', 'x' * 10_000, 'ok id')]
    for g, needle in cases:
        status, result, _ = run(cell, g)
        assert status == GoalStatus.STATUS_ABORTED and needle in result.failure_reason, result.failure_reason
        assert not result.success and len(result.failure_reason) < 600
        assert true_sha not in result.failure_reason and env_sha not in result.failure_reason
    status, first, _ = run(cell, goal(tmp, trial_id='unique_once', attempts=1, steps_per_attempt=2))
    assert first.failure_reason == '', first
    status, again, _ = run(cell, goal(tmp, trial_id='unique_once', attempts=1, steps_per_attempt=2))
    assert status == GoalStatus.STATUS_ABORTED and 'already used' in again.failure_reason
    escaped = [p for p in (tmp.parent.parent / 'x', tmp / 'abs', Path('/x')) if p.exists()]
    assert not escaped and not (tmp / 'a').exists(), escaped
    assert_no_canary(cell)


# (imports, act() body, the attempt's failure reason). {outside} is a path outside the scratch folder.
HOSTILE_POLICIES = [
    pytest.param('', 'while True:\n    pass', 'hang: act() gave no answer', id='infinite_loop'),
    # RLIMIT_AS caps address space, so untouched blocks hit it as surely as written ones; writing 400 MB
    # takes this VM ~1.7 s of page faults, past the 1 s hang timeout, which would end the attempt as a hang.
    pytest.param('import numpy as np', 'blocks = []\nwhile True:\n    blocks.append(np.empty(50_000_000))',
                 'memory limit: MemoryError', id='memory_bomb'),
    # random._os is the os module under another name: past the static check, the audit hook stops it.
    pytest.param('import random', 'random._os.fork()\nreturn (100.0, 100.0)', 'os.fork is not allowed',
                 id='fork'),
    pytest.param('import numpy as np', 'np.save({outside!r}, np.zeros(3))\nreturn (100.0, 100.0)',
                 'outside the scratch folder', id='write_outside_scratch'),
    pytest.param('import subprocess', "subprocess.run(['true'])\nreturn (100.0, 100.0)",
                 'static check: line 1: import subprocess is not allowed', id='import_subprocess'),
    pytest.param('import socket', 'return (100.0, 100.0)',
                 'static check: line 1: import socket is not allowed', id='import_socket'),
    pytest.param('', "return (float('nan'), 100.0)", 'invalid action', id='nan_action'),
    pytest.param('', "return 'left'", 'act() must return 2 numbers, got str', id='garbage_action'),
    pytest.param('', 'return 1 / 0', 'policy raised: ZeroDivisionError', id='exception_in_act'),
    # The Python layers switched off from inside (the audit hook's flag, the os module under other names):
    # the OS boundary holds on its own.
    pytest.param('import typing\nimport numpy as np',
                 "typing.sys.modules['__main__']._locked = False\nnp.save({outside!r}, np.zeros(3))\n"
                 'return (100.0, 100.0)', 'No such file or directory', id='hook_off_write_outside'),
    pytest.param('import typing\nimport random',
                 "typing.sys.modules['__main__']._locked = False\n"
                 "d = random._os.open('/usr', random._os.O_RDONLY)\nrandom._os.mkdir('evil', dir_fd=d)\n"
                 'return (100.0, 100.0)', 'Read-only file system', id='hook_off_mkdir_dir_fd'),
    pytest.param('import random', "random._os.mkfifo('fifo')\nreturn (100.0, 100.0)",
                 'Operation not permitted', id='mkfifo'),
    # Secrets: the environment holds none, and secret-shaped text is scrubbed from every reason.
    pytest.param('import typing\nimport random',
                 "typing.sys.modules['__main__']._locked = False\n"
                 "raise RuntimeError(repr(dict(random._os.environ)) + ' sk-ant-' + 'k' * 40)",
                 'policy raised: RuntimeError', id='exception_carrying_the_environment'),
    # Forged answer frames: a length announced and never sent, and a length no frame may have.
    pytest.param('import typing\nimport random',
                 "typing.sys.modules['__main__']._locked = False\nstruct = typing.sys.modules['struct']\n"
                 "random._os.write(int(typing.sys.argv[2]), struct.pack('!i', 1000) + b'x' * 10)\n"
                 'while True:\n    pass', 'late frame', id='forged_header_then_silence'),
    pytest.param('import typing\nimport random',
                 "typing.sys.modules['__main__']._locked = False\nstruct = typing.sys.modules['struct']\n"
                 "random._os.write(int(typing.sys.argv[2]), struct.pack('!i', 2**31 - 1))\nreturn (1.0, 1.0)",
                 'oversized frame', id='forged_huge_header'),
    # Stale answers without end: the step still ends at its deadline, the hang timeout still ends the policy.
    pytest.param('import typing\nimport random',
                 "typing.sys.modules['__main__']._locked = False\n"
                 "p = b'{{\"ok\": true, \"seq\": 0, \"action\": [1, 1]}}'\n"
                 "frames = (len(p).to_bytes(4, 'big') + p) * 300\n"
                 "while True:\n    random._os.write(int(typing.sys.argv[2]), frames[:5000])\n"
                 "    random._os.write(int(typing.sys.argv[2]), frames[5000:])",
                 'hang: act() gave no answer', id='stale_answer_flood'),
    # Forged JSON answers: nesting past the decoder's depth, an integer too large for a float.
    pytest.param('import typing\nimport random',
                 "typing.sys.modules['__main__']._locked = False\np = b'[' * 200000\n"
                 "random._os.write(int(typing.sys.argv[2]), len(p).to_bytes(4, 'big') + p)\nwhile True:\n"
                 "    pass", 'garbage on the answer pipe', id='forged_deep_json'),
]


def session_processes(leader_pid: int) -> list[int]:
    """Processes in the session of `leader_pid` other than itself (sandboxes and whatever they forked)."""
    found = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if int(fields[3]) == leader_pid and pid != leader_pid and fields[0] != 'Z':
            found.append(pid)
    return found


def assert_serves_a_good_trial(cell) -> None:
    status, result, _ = run(cell, goal(cell['tmp'], attempts=1, steps_per_attempt=5, record=False))
    assert status == GoalStatus.STATUS_SUCCEEDED and result.failure_reason == '', result
    assert '; verifier: ' not in result.attempt_reasons[0], result.attempt_reasons  # no sandbox failure


@pytest.fixture(scope='module')
def sibling(cell):
    """Another cell's sandbox on the same machine, holding a private file in its scratch."""
    from enpire_rollout.policy_runtime import trial_context
    from enpire_rollout.sandbox import PolicyRunner
    path, _ = policy_file(cell['tmp'], 'sibling.py', MOVER.replace(
        'self.failures = []', "self.failures = []\n        np.save('/scratch/private.npy', np.arange(3))"))
    runner = PolicyRunner()
    context = trial_context('pusht', attempts=1, steps_per_attempt=1, control_hz=10.0, cameras=[], seed=1)
    assert runner.start(path, context).ok
    yield runner
    runner.close()


@pytest.mark.parametrize('imports,act_body,reason', HOSTILE_POLICIES)
def test_hostile_policy_ends_its_attempt_with_a_reason_and_the_server_carries_on(cell, sibling, imports,
                                                                                  act_body, reason):
    from tests.enpire_rollout.test_sandbox import observation
    outside = cell['tmp'] / 'outside.npy'
    source = policy_source(act_body.format(outside=str(outside)), imports)
    # 12 steps of held commands outlast the server's hang timeout (1 s): the hang ends the attempt.
    # Two attempts: the second restarts the sandbox after a fatal first one; both end with a reason.
    g = goal(cell['tmp'], source, 'hostile.py', attempts=2, steps_per_attempt=12, record=True)
    status, result, _ = run(cell, g)
    assert status == GoalStatus.STATUS_SUCCEEDED and result.failure_reason == '', result
    assert result.attempts_used == 2, result.attempt_reasons
    assert all(reason in r for r in result.attempt_reasons), result.attempt_reasons
    assert not outside.exists()
    assert session_processes(cell['server'].pid) == [], 'a sandbox (or its fork) outlived the trial'
    assert cell['server'].poll() is None
    assert_no_canary(cell, *result.attempt_reasons)
    assert sibling.alive and sibling.act(observation()).ok
    assert_serves_a_good_trial(cell)


def test_a_policy_cannot_reach_a_sibling_sandbox(cell, sibling):
    body = '\n'.join([
        "typing.sys.modules['__main__']._locked = False",
        'try:', f'    random._os.kill({sibling.proc.pid}, 9)',
        'except OSError as exc:', '    killed = repr(exc)',
        "seen = [random._os.listdir('/proc'), random._os.listdir('.')]",
        "raise RuntimeError(f'{seen} {killed}')"])
    source = policy_source(body, 'import random\nimport typing')
    status, result, _ = run(cell, goal(cell['tmp'], source, 'reach.py', attempts=1, steps_per_attempt=3))
    reason = result.attempt_reasons[0]
    assert 'Operation not permitted' in reason and 'private.npy' not in reason, reason
    assert sibling.alive


def test_a_hung_policy_is_killed_and_restarted_for_the_next_attempt(cell):
    status, result, _ = run(cell, goal(cell['tmp'], HANG, 'hang.py', steps_per_attempt=10))
    assert result.failure_reason == '' and result.attempts_used == 2
    assert all('hang' in r for r in result.attempt_reasons), result.attempt_reasons


def test_cancel_is_reported_canceled_and_leaves_the_cell_holding_still(cell):
    ros = cell['ros']
    safe_commands: list[Command] = []
    states: list[CellState] = []
    subscriptions = [
        ros.node.create_subscription(Command, topic(names.CELL_COMMAND), safe_commands.append, 10),
        ros.node.create_subscription(CellState, topic(names.CELL_STATE), states.append, 10)]
    try:
        ros.wait_for(lambda: states and ros.node.count_publishers(topic(names.CELL_COMMAND)),
                     timeout=10, what='the cell on the graph')
        status, result, _ = run(cell, goal(cell['tmp'], steps_per_attempt=400, attempts=1),
                                cancel_after_step=10)
        assert status == GoalStatus.STATUS_CANCELED and result.failure_reason == 'cancelled'
        assert bag_custom_data(result.bag_path)['enpire.status'] == 'cancelled'

        # The cell steps once per command; idle, it re-publishes its last state (same stamp) at 2 Hz.
        ros.wait_for(lambda: len(states) >= 3 and states[-3].header.stamp == states[-1].header.stamp,
                     timeout=10, what='the cell idle after the cancel')
        held, agent = tuple(safe_commands[-1].values), states[-1].tool_pose.position
        assert tuple(states[-1].commanded) == held
        assert math.dist(held, (agent.x, agent.y)) < 1.0, (held, agent)
        velocity = states[-1].tool_velocity.linear
        assert math.hypot(velocity.x, velocity.y) < 1.0, velocity          # px/s: stopped
    finally:
        for subscription in subscriptions:
            ros.node.destroy_subscription(subscription)


def test_audit_and_replay_of_a_trial_bag(cell, tmp_path):
    from enpire_interfaces.msg import TrialEvent
    from enpire_rollout.audit import audit_bag
    from enpire_rollout.replay import replay

    # Three verdicts while the agent keeps moving: each must be re-judged on the frames it was given
    # (the as-fast cell's clock is not the wall clock; the bag orders by the cell's clock).
    status, result, _ = run(cell, goal(cell['tmp'], seed=5, attempts=3, steps_per_attempt=40))
    assert result.failure_reason == '', result.failure_reason
    rows, videos = audit_bag(result.bag_path, tmp_path)
    assert len(rows) == result.attempts_used == 3, rows
    assert all(r.agree for r in rows), rows
    assert set(videos) == {'top', 'oblique', 'wrist'}
    assert all(Path(v).stat().st_size > 0 for v in videos.values())

    ros = cell['ros']
    got = []
    ros.node.create_subscription(TrialEvent, '/cell_0/trial_events', got.append, 100)
    time.sleep(1.0)
    counts = replay(result.bag_path, rate=0.0, topics=['/cell_0/trial_events'], node=ros.node)
    ros.wait_for(lambda: len(got) >= counts['/cell_0/trial_events'] > 0, timeout=10, what='replayed events')


def long_trial_running(cell, steps: int):
    """The goal handle of a long trial that has run `steps` steps, past one flush period of its bag."""
    ros, feedback = cell['ros'], []
    handle = ros.wait_future(cell['client'].send_goal_async(
        goal(cell['tmp'], steps_per_attempt=2000, attempts=1),
        feedback_callback=lambda f: feedback.append(f.feedback)))
    ros.wait_for(lambda: any(f.step >= steps for f in feedback), timeout=60, what=f'{steps} steps')
    time.sleep(0.7)
    return handle


def test_a_record_goal_on_a_cell_without_a_recorder_is_refused_with_the_reason(cell):
    """No recorder on the cell: a goal with record=true is refused, never run unrecorded."""
    tmp = cell['tmp']
    with lone_trial_server(cell, 'cell_norec', tmp / 'norec') as client:
        status, result, feedback = run({**cell, 'client': client}, goal(tmp, attempts=1, steps_per_attempt=2))
        assert status == GoalStatus.STATUS_ABORTED and not result.success and not feedback
        assert 'no recorder' in result.failure_reason and 'unrecorded' in result.failure_reason
        assert result.bag_path == '' and not list_trials(tmp / 'norec')


@contextlib.contextmanager
def lone_trial_server(cell, ns: str, bag_dir):
    """A trial server alone in namespace `ns` (its recorder answers within 1 s, or not at all), taking
    goals; yields its run_trial client."""
    procs, ros = cell['procs'], cell['ros']
    server = procs.start(f'trial_server_{ns}', [
        '-m', 'enpire_rollout.trial_server_node', '--ros-args', '-r', f'__ns:=/{ns}',
        '-p', f'bag_dir:={bag_dir}', '-p', 'recorder_timeout_wall_s:=1.0'])
    client = ActionClient(ros.node, RunTrial, names.cell_name(ns, names.RUN_TRIAL))
    try:
        assert client.wait_for_server(timeout_sec=60)
        ros.wait_taking_goals(client, goal(cell['tmp'], attempts=0))
        yield client
    finally:
        client.destroy()
        procs.kill(server, signal.SIGINT)


def test_a_bag_start_answered_after_the_trial_gave_up_is_closed_as_aborted(cell):
    """A recorder whose start answers (ok) only after the trial server stopped waiting for it: the trial
    ends with the reason, and the bag that opened late is closed as aborted at once, not left open to
    refuse the cell's next trials."""
    import threading

    from rclpy.callback_groups import ReentrantCallbackGroup

    from enpire_interfaces.srv import StartRecording, StopRecording

    ros, tmp = cell['ros'], cell['tmp']
    stops, answer_start = [], threading.Event()

    def late_start(request, response):
        answer_start.wait(60.0)           # answered once the trial gave up on it
        response.ok, response.bag_path = True, str(tmp / 'late' / request.trial_id)
        return response

    def stop(request, response):
        stops.append(request)
        response.ok, response.error = False, 'no bag is open'
        return response
    group = ReentrantCallbackGroup()
    services = [ros.node.create_service(StartRecording, names.cell_name('cell_late', names.RECORDER_START),
                                        late_start, callback_group=group),
                ros.node.create_service(StopRecording, names.cell_name('cell_late', names.RECORDER_STOP),
                                        stop, callback_group=group)]
    try:
        with lone_trial_server(cell, 'cell_late', tmp / 'late') as client:
            handle = ros.wait_future(client.send_goal_async(goal(tmp, attempts=1, steps_per_attempt=2)))
            res = ros.wait_future(handle.get_result_async(), timeout=90, what='trial result')
            assert res.status == GoalStatus.STATUS_ABORTED and not res.result.success
            assert res.result.failure_reason.startswith('recorder start: '), res.result.failure_reason
            answer_start.set()
            late = ros.wait_for(lambda: [json.loads(r.summary_json) for r in stops if r.status == 'aborted'
                                         and 'never ran' in r.summary_json], 60.0, 'the late bag stopped')
            assert late[0]['failure_reason'].startswith('the trial never ran: recorder start: '), late
    finally:
        answer_start.set()
        for service in services:
            ros.node.destroy_service(service)


def test_a_trial_whose_recorder_dies_is_aborted_and_its_bag_salvaged(cell):
    """The recorder SIGKILLed mid-trial: the trial ends aborted with the reason (no success without its
    bag), the bag is salvaged as aborted from what was flushed, and the next trial records again."""
    from tests.enpire_rollout.third_party_readers import check_bag

    procs, ros, tmp = cell['procs'], cell['ros'], cell['tmp']
    handle = long_trial_running(cell, steps=30)
    procs.kill(cell['recorder'], signal.SIGKILL)
    res = ros.wait_future(handle.get_result_async(), timeout=90, what='trial result')
    assert res.status == GoalStatus.STATUS_ABORTED and not res.result.success
    assert 'recording lost' in res.result.failure_reason, res.result.failure_reason
    trial_id = Path(res.result.bag_path).name
    assert (tmp / 'bags' / '.journal' / f'{trial_id}.json').exists()
    recovered = recover_unfinished(tmp / 'bags')
    assert [r['trial_id'] for r in recovered] == [trial_id]
    salvaged = check_bag(res.result.bag_path)
    assert salvaged[topic(names.CELL_STATE)] >= 30 and salvaged[topic(names.camera_info('top'))] >= 1
    assert bag_custom_data(res.result.bag_path)['enpire.status'] == 'aborted'

    cell['recorder'] = start_recorder(procs)
    status, result, _ = run(cell, goal(tmp, attempts=1, steps_per_attempt=5), timeout=120)
    assert status == GoalStatus.STATUS_SUCCEEDED and result.failure_reason == '', result.failure_reason
    assert bag_custom_data(result.bag_path)['enpire.status'] == 'finished'


# Last: after a SIGKILL the dead server lingers in discovery for a while.
def test_killed_trial_server_leaves_an_aborted_bag(cell):
    """The trial server SIGKILLed mid-trial: the recorder still holds the trial's bag open; the restarted
    server has it closed as aborted, complete up to then and readable by every reader."""
    procs, tmp = cell['procs'], cell['tmp']
    ros, client = cell['ros'], cell['client']
    handle = long_trial_running(cell, steps=40)
    procs.kill(cell['server'], signal.SIGKILL)
    journal = list((tmp / 'bags' / '.journal').glob('*.json'))
    assert len(journal) == 1
    trial_id = journal[0].stem
    cell['server'] = start_trial_server(procs, tmp / 'bags')
    ros.wait_for(lambda: any(t['trial_id'] == trial_id for t in list_trials(tmp / 'bags')), timeout=30,
                 what='restart recorded the aborted trial')
    record = next(t for t in list_trials(tmp / 'bags') if t['trial_id'] == trial_id)
    assert record['status'] == 'aborted' and record['summary']['messages'] > 40
    assert bag_custom_data(record['bag_path'])['enpire.status'] == 'aborted'
    from tests.enpire_rollout.third_party_readers import check_bag
    salvaged = check_bag(record['bag_path'])          # the salvaged bag reads like a finished one
    assert salvaged[topic(names.CELL_STATE)] > 40 and sum(salvaged.values()) == record['summary']['messages']
    assert handle is not None
    assert client.wait_for_server(timeout_sec=30)
    ros.wait_taking_goals(client, goal(tmp, attempts=0))
