"""The safety node on a real graph, against a fake cell played by the test: filtering, one command out per
command in, events, status, diagnostics, latched e-stop, watchdog, refused parameter changes."""
import importlib.util
import math
import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from enpire_common import names
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_srvs.srv import SetBool

from enpire_env.safety import SafetyLimits
from enpire_interfaces.msg import CellState, Command, SafetyEvent, SafetyStatus

pytestmark = pytest.mark.graph
NS = '/cell_0'
LIMITS = ('safety_limits:\n  low: [20.0, 20.0]\n  high: [492.0, 492.0]\n'
          '  max_step: 50.0\n  max_speed: 100000.0\n'
          '  max_command_rate_hz: 1000.0\n  min_command_rate_hz: {min_rate}\n  watchdog_action: stop\n')


class FakeCell:
    """Plays the cell: publishes cell_state, records what arrives on cmd/target and the safety outputs."""

    def __init__(self, ros_node):
        self.ros = ros_node
        node = ros_node.node
        self.lock = threading.Lock()
        self.commands, self.events, self.statuses, self.diags = [], [], [], []
        self.command_sub = node.create_subscription(Command, names.cell_name(NS, names.CELL_COMMAND),
                                                    lambda m: self._add(self.commands, m), 100)
        node.create_subscription(SafetyEvent, names.cell_name(NS, names.SAFETY_EVENTS),
                                 lambda m: self._add(self.events, m), 100)
        node.create_subscription(SafetyStatus, names.cell_name(NS, names.SAFETY_STATUS),
                                 lambda m: self._add(self.statuses, m),
                                 QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        node.create_subscription(DiagnosticArray, names.DIAGNOSTICS, lambda m: self._add(self.diags, m), 10)
        self.policy = node.create_publisher(Command, names.cell_name(NS, names.POLICY_COMMAND), 100)
        self.state = node.create_publisher(CellState, names.cell_name(NS, names.CELL_STATE), 10)
        self.estop = node.create_client(SetBool, names.cell_name(NS, names.ESTOP))
        self.params = node.create_client(SetParameters, f'{NS}/safety/set_parameters')

    def _add(self, bucket, msg):
        with self.lock:
            bucket.append(msg)

    def connect(self):
        assert self.estop.wait_for_service(timeout_sec=20), 'safety node never came up'
        # Both directions matched: a command the safety node forwards before our subscription has
        # matched its publisher is lost to the test (volatile), not to the cell.
        self.ros.wait_for(lambda: self.policy.get_subscription_count() > 0
                          and self.state.get_subscription_count() > 0 and self.statuses
                          and self.command_sub.get_publisher_count() > 0,
                          what='safety node subscriptions and its cmd/target publisher')

    def set_agent(self, x, y):
        msg = CellState()
        msg.header.frame_id = 'table'
        msg.tool_pose.position.x, msg.tool_pose.position.y = x, y
        self.state.publish(msg)

    def send(self, x, y, frame='table', expect_output=True, values=None):
        """Publish one policy command (x, y, or any `values`); return the command that reached the cell."""
        before = len(self.commands)
        msg = Command(values=list(values) if values is not None else [x, y])
        msg.header.frame_id = frame
        self.policy.publish(msg)
        if not expect_output:
            return None
        self.ros.wait_for(lambda: len(self.commands) > before, what='a command on cmd/target')
        return tuple(self.commands[before].values)

    def call_estop(self, data):
        return self.ros.call(self.estop, SetBool.Request(data=data))


def start_safety(node_processes, tmp_path, pacing, min_rate=1.0, autostart=True):
    limits = tmp_path / 'limits.yaml'
    limits.write_text(LIMITS.format(min_rate=min_rate))
    node_processes.start('safety', ['-m', 'enpire_env.safety_node', '--ros-args', '-r', f'__ns:={NS}',
                                    '-p', f'pacing:={pacing}', '-p', f'limits_file:={limits}',
                                    '-p', f'autostart:={str(autostart).lower()}'])
    return SafetyLimits.from_yaml(limits)


def change_state(ros_node, node_name, transition):
    """The transition made (the node in its goal state), robust to a lost answer (LifecycleClient)."""
    from enpire_common.lifecycle import TRANSITIONS, LifecycleClient

    client = LifecycleClient(ros_node.node, node_name, lambda f, t: ros_node.wait_future(f, t))
    try:
        return client.change(transition, timeout_s=30) == TRANSITIONS[transition][1]
    finally:
        client.close()


def test_managed_safety_publishes_nothing_before_activation_and_holds_when_deactivated(
        node_processes, ros_node, tmp_path):
    from enpire_common.lifecycle import bring_up
    from lifecycle_msgs.msg import State, Transition

    start_safety(node_processes, tmp_path, 'real_time', min_rate=0.2, autostart=False)
    cell = FakeCell(ros_node)
    assert cell.estop.wait_for_service(timeout_sec=20), 'the e-stop is served from start-up'
    assert change_state(ros_node, f'{NS}/safety', Transition.TRANSITION_CONFIGURE)
    ros_node.wait_for(lambda: cell.policy.get_subscription_count() > 0, what='configured: subscribed')
    cell.set_agent(100.0, 100.0)
    for _ in range(5):
        cell.send(110.0, 100.0, expect_output=False)
    time.sleep(1.5)                                  # more than a status period and a watchdog timeout
    assert cell.commands == [] and cell.statuses == [] and cell.events == [], 'published while inactive'

    state = bring_up(ros_node.node, f'{NS}/safety', lambda f, t: ros_node.wait_future(f, t), timeout_s=20)
    assert state == State.PRIMARY_STATE_ACTIVE
    ros_node.wait_for(lambda: cell.statuses, what='status once active')
    ros_node.wait_for(lambda: cell.send(110.0, 100.0) == (110.0, 100.0), what='commands pass once active')

    cell.set_agent(105.0, 100.0)
    ros_node.wait_for(lambda: cell.send(105.0, 100.0) == (105.0, 100.0), what='agent at 105')
    n = len(cell.commands)
    assert change_state(ros_node, f'{NS}/safety', Transition.TRANSITION_DEACTIVATE)
    ros_node.wait_for(lambda: len(cell.commands) > n, what='the hold sent at deactivation')
    assert tuple(cell.commands[n].values) == (105.0, 100.0)
    time.sleep(0.3)
    n = len(cell.commands)
    cell.send(200.0, 200.0, expect_output=False)
    time.sleep(1.0)
    assert len(cell.commands) == n, 'a deactivated safety node forwarded a command'


def test_safety_node_filters_latches_and_refuses_changes(node_processes, ros_node, tmp_path):
    limits = start_safety(node_processes, tmp_path, 'real_time')
    cell = FakeCell(ros_node)
    cell.connect()
    cell.set_agent(100.0, 100.0)
    ros_node.wait_for(lambda: cell.send(100.0, 100.0) == (100.0, 100.0), what='agent position known')

    out = cell.send(1e9, -1e9)
    assert limits.in_box(out) and math.dist(out, (100.0, 100.0)) <= 50.0 + 1e-6
    held = cell.send(math.nan, 5.0)
    assert held == out
    assert cell.send(300.0, 300.0, frame='world') == out
    assert cell.send(0, 0, values=(110.0, 100.0, 0.0)) == out     # a 3-vector for a 2-entry action
    kinds = lambda: {e.kind for e in cell.events}
    expected = {SafetyEvent.CLAMPED_WORKSPACE, SafetyEvent.CLAMPED_STEP, SafetyEvent.REJECTED_NONFINITE,
                SafetyEvent.REJECTED_FRAME, SafetyEvent.REJECTED_SIZE}
    ros_node.wait_for(lambda: expected <= kinds(), what='events')
    [size] = [e for e in cell.events if e.kind == SafetyEvent.REJECTED_SIZE]
    assert '3 values: the action has 2' in size.reason and list(size.requested) == [110.0, 100.0, 0.0]
    assert tuple(size.applied) == out
    [clamp] = [e for e in cell.events if e.kind == SafetyEvent.CLAMPED_WORKSPACE]
    assert list(clamp.requested) == [1e9, -1e9] and limits.in_box(clamp.applied)

    # e-stop: latches, only stops reach the cell, survives further latches, cleared by an explicit release
    n = len(cell.commands)
    response = cell.call_estop(True)
    assert response.success and 'latched' in response.message
    ros_node.wait_for(lambda: len(cell.commands) > n, what='the stop sent at the latch')
    assert tuple(cell.commands[n].values) == (100.0, 100.0)
    ros_node.wait_for(lambda: cell.statuses[-1].estopped, what='status estopped')
    assert cell.send(120.0, 100.0) == (100.0, 100.0)
    ros_node.wait_for(lambda: any(d.status[0].level == b'\x02' or d.status[0].level == 2 for d in cell.diags),
                      what='diagnostics at ERROR while e-stopped')
    assert cell.call_estop(False).message == 'e-stop released'
    ros_node.wait_for(lambda: not cell.statuses[-1].estopped, what='status released')
    # a heartbeat stop or watchdog hold can still be in flight at the release: retry until ours comes back
    ros_node.wait_for(lambda: cell.send(120.0, 100.0) == (120.0, 100.0), timeout=30,
                      what='commands pass again after the release')
    assert {SafetyEvent.ESTOP_LATCHED, SafetyEvent.ESTOP_RELEASED} <= kinds()

    # watchdog: no command for longer than 1 s -> a stop at the agent's position
    ros_node.wait_for(lambda: SafetyEvent.WATCHDOG_STOP in kinds(), timeout=30, what='watchdog stop')
    # the status topic is periodic: it reports the trip a status period after the event
    ros_node.wait_for(lambda: cell.statuses[-1].watchdog_tripped or cell.statuses[-1].watchdog_trips >= 1,
                      timeout=30, what='the status reporting the watchdog trip')

    # parameters cannot be changed by the agent
    request = SetParameters.Request(parameters=[Parameter(name='limits_file', value=ParameterValue(
        type=ParameterType.PARAMETER_STRING, string_value='/tmp/loose.yaml'))])
    result = ros_node.call(cell.params, request).results[0]
    assert not result.successful and 'read-only' in result.reason
    assert node_processes.procs[0][1].poll() is None
    assert all(limits.in_box(c.values) for c in cell.commands)


def test_watchdog_stops_every_stalled_stream_and_stays_quiet_in_between(node_processes, ros_node, tmp_path):
    """The watchdog sleeps while no stream is live (no output before the first command, none after a trip)
    and still stops each stream that stalls, in time: min rate 2 Hz -> within 0.5 s plus a control period
    (generous margins for a loaded machine)."""
    start_safety(node_processes, tmp_path, 'real_time', min_rate=2.0)
    cell = FakeCell(ros_node)
    cell.connect()
    time.sleep(1.0)                       # longer than the watchdog timeout, before any command
    assert cell.commands == [] and cell.events == [], 'the safety node commanded the cell on its own'
    for stream in range(2):
        cell.set_agent(100.0 + stream, 100.0)
        ros_node.wait_for(lambda s=stream: cell.send(100.0 + s, 100.0) == (100.0 + s, 100.0),
                          what=f'stream {stream}: agent position known')
        for _ in range(5):               # a live stream at ~10 Hz
            cell.send(100.0 + stream, 100.0)
            time.sleep(0.1)
        n_commands, stalled = len(cell.commands), time.monotonic()
        ros_node.wait_for(lambda s=stream: sum(e.kind == SafetyEvent.WATCHDOG_STOP for e in cell.events) > s,
                          timeout=20, what=f'stream {stream}: the watchdog stop')
        assert time.monotonic() - stalled < 5.0, 'the watchdog stopped the stalled stream late'
        ros_node.wait_for(lambda n=n_commands: len(cell.commands) > n, what='the stop command')
        assert tuple(cell.commands[n_commands].values) == (100.0 + stream, 100.0)
        time.sleep(1.0)                   # tripped: the watchdog sleeps until the next stream
        assert len(cell.commands) == n_commands + 1, 'commands after the watchdog stop'
    ros_node.wait_for(lambda: cell.statuses[-1].watchdog_trips == 2, what='two trips in the status')


def test_as_fast_exactly_one_command_per_policy_command(node_processes, ros_node, tmp_path):
    limits = start_safety(node_processes, tmp_path, 'as_fast', min_rate=0.5)
    cell = FakeCell(ros_node)
    cell.connect()
    cell.set_agent(200.0, 200.0)
    ros_node.wait_for(lambda: cell.send(200.0, 200.0) == (200.0, 200.0), what='agent position known')
    cell.call_estop(True)
    cell.call_estop(False)
    start = len(cell.commands)
    requests = [(210.0, 200.0), (math.inf, 1.0), (1e300, 1e300), (-5.0, 200.0), (math.nan, math.nan),
                (205.0, 195.0)] * 5
    for x, y in requests:
        cell.send(x, y, expect_output=False)
    ros_node.wait_for(lambda: len(cell.commands) >= start + len(requests), what='one output per input')
    time.sleep(0.5)
    outputs = cell.commands[start:]
    assert len(outputs) == len(requests), 'as-fast: no extra (watchdog or e-stop) publishes, none swallowed'
    for c in outputs:
        assert limits.in_box(c.values)
        assert math.dist(c.values, (200.0, 200.0)) <= limits.max_step + 1e-6


def test_bad_limits_file_fails_closed(node_processes, tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('safety_limits:\n  max_step: -3\n')
    proc = node_processes.start('safety_bad', ['-m', 'enpire_env.safety_node', '--ros-args',
                                               '-p', f'limits_file:={bad}', '-p', 'autostart:=true'])
    assert proc.wait(timeout=30) != 0
    assert 'max_step' in node_processes.log('safety_bad')


@pytest.mark.skipif(importlib.util.find_spec('enpire_sim.sim_cell_node') is None,
                    reason='sim_cell not available')
def test_lockstep_with_sim_cell(node_processes, ros_node, tmp_path):
    """as-fast sim + safety: every policy command (even NaN or huge) steps the sim exactly once, in limits."""
    node_processes.start('sim', ['-m', 'enpire_sim.sim_cell_node', '--ros-args', '-r', f'__ns:={NS}',
                                 '-p', 'task:=pusht'])
    limits = start_safety(node_processes, tmp_path, 'as_fast', min_rate=0.5)
    cell = FakeCell(ros_node)
    states = []
    ros_node.node.create_subscription(CellState, names.cell_name(NS, names.CELL_STATE), states.append, 100)
    cell.connect()
    ros_node.wait_for(lambda: states, what='cell_state from the sim')
    ros_node.wait_for(lambda: cell.policy.get_subscription_count() > 0, what='safety subscribed')
    # Safety must know where the agent is before a NaN command can become a stop: the idle cell
    # re-publishes its state (2 Hz), so two more states after safety subscribed have reached it too.
    seen = len(states)
    ros_node.wait_for(lambda: len(states) >= seen + 2, what='the idle cell re-published to safety')
    step0 = states[-1].step
    requests = [(math.nan, 1.0), (1e12, -1e12), (300.0, 300.0), (math.inf, math.inf), (-50.0, 600.0)] * 4
    for x, y in requests:
        before = len(cell.commands)
        cell.send(x, y, expect_output=False)
        ros_node.wait_for(lambda b=before: len(cell.commands) > b, what='command to the cell')
    ros_node.wait_for(lambda: states[-1].step >= step0 + len(requests), what='one sim step per command')
    time.sleep(0.3)
    assert states[-1].step == step0 + len(requests)
    assert all(limits.in_box(c.values) for c in cell.commands)
