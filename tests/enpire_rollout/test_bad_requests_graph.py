"""Every server of a simulated cell under a batch of malformed requests: each is refused with a clear,
short reason, nothing crashes or hangs, nothing is written outside the server's folders, and the next good
request still works (sim + safety + verify + reset + trial server, as-fast)."""
from __future__ import annotations

import math

import pytest
from action_msgs.msg import GoalStatus
from enpire_common import names
from enpire_common.action_client import ActionClient
from enpire_task_pusht import messages as pusht_msgs
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from enpire_interfaces.action import ResetCell
from enpire_interfaces.msg import CellState, Command, ObjectPose, SafetyEvent
from enpire_interfaces.srv import PlaceObjects, Verify
from tests.enpire_rollout.test_trial_server_graph import NS, cell, goal, run, topic  # noqa: F401

pytestmark = pytest.mark.graph

NAN, INF, HUGE = float('nan'), float('inf'), 1e308
LONG = 'x' * 10_000
TRAVERSAL = '../../../../tmp/enpire_escape'
BAD_NUMBERS = (NAN, INF, -INF, HUGE, -HUGE, -1.0)
MAX_REASON = 600


def short_reason(text: str) -> bool:
    return 0 < len(text) < MAX_REASON and LONG not in text


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def call(ros, srv_type, name: str, request, timeout: float = 30.0):
    client = ros.node.create_client(srv_type, name)
    try:
        assert client.wait_for_service(timeout_sec=30), name
        return ros.call(client, request, timeout=timeout, what=name)
    finally:
        ros.node.destroy_client(client)


def no_escape(cell) -> None:  # noqa: F811
    """Nothing named by a hostile string was created anywhere."""
    from pathlib import Path
    assert not Path('/tmp/enpire_escape').exists()
    assert not any('enpire_escape' in p.name or p.name == LONG for p in cell['tmp'].rglob('*'))


def test_sim_cell_refuses_bad_placements_faults_and_commands(cell):  # noqa: F811
    ros = cell['ros']
    states = []
    ros.node.create_subscription(CellState, topic(names.CELL_STATE), states.append, 50)
    place = names.cell_name(NS, names.PLACE_OBJECTS)
    for block, agent in [((v, 250.0, 0.0), (100.0, 100.0)) for v in BAD_NUMBERS] + \
                        [((250.0, 250.0, v), (100.0, 100.0)) for v in (NAN, INF, -INF)] + \
                        [((250.0, 250.0, 0.0), (v, v)) for v in BAD_NUMBERS]:
        answer = call(ros, PlaceObjects, place, pusht_msgs.place_request(block, agent))
        assert not answer.success and short_reason(answer.message), (block, agent, answer.message)
    # Scenes that are not Push-T's: no object, two, a hostile name, vectors of the wrong length.
    two = [ObjectPose(name='block', pose=[256.0, 256.0, 0.0])] * 2
    for objects, tool in [([], [100.0, 100.0]), (two, [1.0, 1.0]),
                          ([ObjectPose(name=LONG, pose=[256.0, 256.0, 0.0])], [100.0, 100.0]),
                          ([ObjectPose(name='block', pose=[256.0] * 100_000)], [100.0, 100.0]),
                          ([ObjectPose(name='block', pose=[256.0, 256.0, 0.0])], [NAN] * 100_000)]:
        answer = call(ros, PlaceObjects, place, PlaceObjects.Request(objects=objects, tool=tool))
        assert not answer.success and short_reason(answer.message), answer.message[:200]

    # Camera faults set at run time: non-finite or absurd values and unknown cameras are refused.
    for text in ['top: {occlusion: 0.5, occlusion_center: [.nan, 0.5]}', 'top: {gain: [.inf, 1, 1]}',
                 'top: {noise_std: 1e308}', 'top: {bias: [-1e308, 0, 0]}', 'top: {dropout: -1}',
                 f'{TRAVERSAL}: {{stale: true}}', f'{"y" * 900}: {{}}', f'{LONG}: {{}}', '[1, 2]',
                 'top: {unknown_knob: 1}']:
        result = call(ros, SetParameters, f'/{NS}/sim_cell/set_parameters', SetParameters.Request(
            parameters=[ParameterMsg(name='camera_faults', value=ParameterValue(
                type=ParameterType.PARAMETER_STRING, string_value=text))])).results[0]
        assert not result.successful and short_reason(result.reason), (text, result.reason)

    # Commands straight at the cell's input (past safety): refused by the cell itself, never stepped.
    pub = ros.node.create_publisher(Command, topic(names.CELL_COMMAND), 10)
    ros.wait_for(lambda: states, 30, 'cell state')
    before = stamp_ns(states[-1])
    for values, frame in [((NAN, 100.0), 'table'), ((100.0, INF), 'table'), ((HUGE, 100.0), 'table'),
                          ((-5.0, 100.0), 'table'), ((100.0, 100.0), ''), ((100.0, 100.0), LONG),
                          ((), 'table'), ((100.0,), 'table'), ((100.0, 100.0, 0.0), 'table'),
                          ((100.0,) * 100_000, 'table')]:
        msg = Command(values=list(values))
        msg.header.frame_id = frame
        pub.publish(msg)
    # The good placement after all that works, and the state the cell publishes is finite.
    answer = call(ros, PlaceObjects, place, pusht_msgs.place_request((256.0, 256.0, 0.5), (100.0, 100.0)))
    assert answer.success, answer.message
    after = ros.wait_for(lambda: [stamp_ns(s) for s in states if stamp_ns(s) > before], 30, 'a new state')
    assert after[0] == before + 100_000_000, 'only the placement advanced the cell (one tick)'
    assert all(math.isfinite(v) for s in states for v in (s.tool_pose.position.x, s.tool_pose.position.y))
    ok = call(ros, Verify, names.cell_name(NS, names.VERIFY), Verify.Request(task='pusht'))
    assert ok.ok and len(ok.verdict.cameras) == 3, ok.error       # every camera still delivers frames
    no_escape(cell)


def test_safety_node_lets_no_bad_command_reach_the_cell(cell):  # noqa: F811
    ros = cell['ros']
    commands, events = [], []
    listen = [ros.node.create_subscription(Command, topic(names.CELL_COMMAND), commands.append, 100),
              ros.node.create_subscription(SafetyEvent, topic(names.SAFETY_EVENTS), events.append, 100)]
    pub = ros.node.create_publisher(Command, topic(names.POLICY_COMMAND), 10)
    ros.wait_for(lambda: pub.get_subscription_count() > 0 and all(s.get_publisher_count() for s in listen),
                 30, 'safety subscribed and heard')
    bad = [((NAN, 100.0), 'table'), ((100.0, NAN), 'table'), ((INF, -INF), 'table'), ((HUGE, HUGE), 'table'),
           ((-HUGE, 100.0), 'table'), ((-1000.0, 100.0), 'table'), ((100.0, 100.0), ''),
           ((100.0, 100.0), LONG), ((100.0, 100.0), TRAVERSAL), ((100.0, 100.0, NAN), 'table'), ((), 'table'),
           ((NAN,) * 100_000, 'table')]
    for values, frame in bad:
        # One at a time: the safety node's command publisher keeps the last 10, as a cell's input does.
        answered = len(commands)
        msg = Command(values=list(values))
        msg.header.frame_id = frame
        pub.publish(msg)
        ros.wait_for(lambda n=answered: len(commands) > n, 30, f'the answer to {list(values)[:3]}')
    ros.wait_for(lambda: len(events) >= len(bad), 30, 'one safety event (or more) per policy command')
    assert all(short_reason(e.reason) for e in events), [e.reason[:100] for e in events]
    assert all(len(e.requested) <= 64 for e in events), 'a hostile vector is not repeated in full'
    # Transitions that do not exist or do not start from `active`, and parameter changes (all refused):
    # the node stays active.
    for transition in (Transition(id=255), Transition(label='explode'), Transition(label='configure'),
                       Transition(id=Transition.TRANSITION_CLEANUP)):
        answer = call(ros, ChangeState, f'/{NS}/safety/change_state',
                      ChangeState.Request(transition=transition))
        assert not answer.success, transition
    for name, value in [('status_period', ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                         double_value=NAN)),
                        ('limits_file', ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                       string_value=TRAVERSAL))]:
        result = call(ros, SetParameters, f'/{NS}/safety/set_parameters', SetParameters.Request(
            parameters=[ParameterMsg(name=name, value=value)])).results[0]
        assert not result.successful and short_reason(result.reason), (name, result.reason)
    state = call(ros, GetState, f'/{NS}/safety/get_state', GetState.Request()).current_state
    assert state.id == State.PRIMARY_STATE_ACTIVE, state.label
    pub.publish(pusht_msgs.command((200.0, 210.0)))
    ros.wait_for(lambda: len(commands) > len(bad), 30, 'the good command forwarded')
    for c in commands:
        assert c.header.frame_id == names.TABLE_FRAME
        assert len(c.values) == 2 and all(math.isfinite(v) for v in c.values), list(c.values)
        assert all(0.0 <= v <= 512.0 for v in c.values), list(c.values)
    # The good one is followed (toward it, within the step limit), not held like the bad ones.
    held, followed = commands[len(bad) - 1].values, commands[-1].values
    assert math.dist(followed, (200.0, 210.0)) < math.dist(held, (200.0, 210.0))
    kinds = {e.kind for e in events}
    assert {SafetyEvent.REJECTED_SIZE, SafetyEvent.REJECTED_NONFINITE, SafetyEvent.REJECTED_FRAME} <= kinds


def test_verify_refuses_malformed_requests(cell):  # noqa: F811
    ros = cell['ros']
    service = names.cell_name(NS, names.VERIFY)
    for task, cameras in [(LONG, []), ('stack', []), (TRAVERSAL, []), ('pusht', ['nope']),
                          ('pusht', [LONG]), ('pusht', [TRAVERSAL]), ('pusht', ['top', 'top']),
                          ('pusht', [''] * 1000), ('pusht', ['top'] * 1000)]:
        answer = call(ros, Verify, service, Verify.Request(task=task, cameras=cameras, save_evidence=True))
        assert not answer.ok and short_reason(answer.error), (task[:20], cameras[:3], answer.error[:200])
        assert not answer.verdict.cameras
    good = call(ros, Verify, service, Verify.Request(task='pusht', cameras=['top'], save_evidence=False))
    assert good.ok and [c.camera for c in good.verdict.cameras] == ['top'], good.error
    no_escape(cell)


def test_reset_aborts_malformed_goals_and_resets_after_them(cell):  # noqa: F811
    ros = cell['ros']
    client = ActionClient(ros.node, ResetCell, names.cell_name(NS, names.RESET))
    assert client.wait_for_server(timeout_sec=30)
    ros.wait_taking_goals(client, ResetCell.Goal(task='pusht', seed=0, max_tries=0))   # a fresh server

    def reset(**kw):
        values = dict(task='pusht', seed=1, distribution='in_distribution', max_tries=3)
        values.update(kw)
        handle = ros.wait_future(client.send_goal_async(ResetCell.Goal(**values)), 30, 'reset accepted')
        assert handle.accepted
        answer = ros.wait_future(handle.get_result_async(), timeout=120, what='reset result')
        return answer.status, answer.result

    for kw in [dict(task=''), dict(task=LONG), dict(task=TRAVERSAL), dict(distribution=LONG),
               dict(distribution='everywhere'), dict(max_tries=0), dict(max_tries=-1),
               dict(max_tries=2**31 - 1)]:
        status, result = reset(**kw)
        assert status == GoalStatus.STATUS_ABORTED and not result.success, kw
        assert short_reason(result.failure_reason), (list(kw), result.failure_reason[:200])
    status, result = reset(seed=2**32 - 1, distribution='out_of_distribution')
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result.failure_reason
    no_escape(cell)


def test_run_trial_aborts_malformed_goals_and_runs_after_them(cell):  # noqa: F811
    tmp = cell['tmp']
    cases = [goal(tmp, task=LONG), goal(tmp, distribution=LONG), goal(tmp, distribution=TRAVERSAL),
             goal(tmp, policy_path=LONG), goal(tmp, policy_path=str(tmp / 'a\x00b.py')),
             goal(tmp, policy_path=str(tmp / TRAVERSAL) + '.py'), goal(tmp, policy_path=''),
             goal(tmp, policy_path=str(tmp)), goal(tmp, policy_sha256=LONG),
             goal(tmp, policy_sha256=''), goal(tmp, attempts=-1), goal(tmp, steps_per_attempt=0),
             goal(tmp, steps_per_attempt=-5), goal(tmp, time_budget_s=-1.0), goal(tmp, time_budget_s=INF),
             goal(tmp, time_budget_s=-INF), goal(tmp, trial_id=TRAVERSAL)]
    for g in cases:
        status, result, _ = run(cell, g)
        assert status == GoalStatus.STATUS_ABORTED and not result.success
        assert short_reason(result.failure_reason), result.failure_reason[:200]
        assert not result.bag_path
    status, result, _ = run(cell, goal(tmp, seed=2**32 - 1, attempts=1, steps_per_attempt=3))
    assert status == GoalStatus.STATUS_SUCCEEDED and result.failure_reason == '', result.failure_reason
    no_escape(cell)
