"""The safety node: the only publisher of the cell's command input (`names.CELL_COMMAND`).

Policies publish `enpire_interfaces/Command`s (the task's action vector in its frame) on
`names.POLICY_COMMAND`; for each one this node
publishes exactly one command to the cell: the filtered command, or the held last safe one (a stop while
the e-stop is latched) when it is rejected, so a cell stepping in lock-step with its commands never
stalls. Every intervention goes out as an `enpire_interfaces/SafetyEvent`; the status (latched flags
and counters) on `names.SAFETY_STATUS` (transient local, on change and every `status_period` s) and on
`names.DIAGNOSTICS` (with the policy command rate as a frequency status in real-time pacing).
`names.ESTOP` (std_srvs/SetBool): data=true latches, data=false releases; served from start-up on.
Commands and events are stamped on the cell's clock (one time base with its states and frames in a bag):
the answer to a policy command carries that command's stamp, anything else the last cell state's.

What an idle cell costs is its executor's wake-ups, so the node wakes only for work: the cell's states
are taken when they are needed (a policy command, a watchdog tick, an e-stop request: every state received
since, in order, enpire_common.on_demand), not dispatched one callback each; the watchdog timer sleeps
while `SafetyFilter.watching` is false (no command accepted yet, or a stalled stream already stopped) and
is started again by the next accepted command or latch.

A managed node (enpire_common.lifecycle): nothing is published before `activate` (`enpire up`, the launch
files or `-p autostart:=true` bring it there); `deactivate` commands a stop at the agent's position
(real-time pacing) and then forwards nothing; an error transition latches the e-stop.

Parameters (read at start-up; every later change is refused with a reason):
- `task`: the task whose limits apply (a name of the task registry; '': the one installed task, where only
  one is: bringup files name it);
- `limits_file`: YAML with the limits ('': the task's own, `Task.safety_limits`); a task with its own
  command rule (`Task.command_filter`, e.g. a displacement action's workspace) reads it from there too;
- `pacing`: `real_time` (the node's clock, sim time in a simulated cell; the watchdog ticks every control
  period while a command stream is live or the e-stop is latched, and may command a hold or stop on its
  own) or `as_fast` (the cell steps once per command: the filter's clock advances one control period per
  policy command, and the node never publishes on its own, since every publish would step the cell; rate
  and watchdog limits are then moot);
- `status_period`: seconds between periodic status messages;
- `autostart`: configure and activate at start-up (no lifecycle manager).

Run: python -m enpire_env.safety_node --ros-args -r __ns:=/cell_0 -p pacing:=as_fast -p autostart:=true
"""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from enpire_common import messages, names, task_registry
from enpire_common.executors import lean_publisher_events, lean_subscription_events
from enpire_common.lifecycle import ManagedCellNode
from enpire_common.node_main import run_node
from enpire_common.on_demand import OnDemandSubscriptions
from enpire_common.parameters import describe, refuse_non_finite
from enpire_common.rate_status import FrequencyStatus, diagnostic_status
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool

from enpire_env.safety import FilterResult, SafetyFilter, SafetyLimits
from enpire_interfaces.msg import CellState, Command, SafetyEvent, SafetyStatus

PACINGS = ('real_time', 'as_fast')


def load_task(task: str):
    """The task called `task` ('': the one installed task, where only one is); ValueError naming the
    installed tasks when there is no such task."""
    try:
        return task_registry.get(task or task_registry.sole())
    except task_registry.UnknownTask as exc:
        raise ValueError(f'safety: {exc}') from None


def task_limits_file(task: str) -> str:
    """The safety-limits YAML of the task called `task` ('': the one installed task)."""
    return str(load_task(task).load('safety_limits')())


def task_command_rule(task: str, limits_file: str):
    """The task's own command rule (`Task.command_filter`) built from `limits_file`, or None: the generic
    limits alone (absolute commands)."""
    found = load_task(task)
    return None if found.command_filter is None else found.load('command_filter')(limits_file)


MAX_EVENT_VALUES = 64   # entries of a requested vector an event repeats


class SafetyNode(ManagedCellNode):
    """Filters policy commands into cell commands; watchdog, latched e-stop, events, status."""

    def __init__(self, **node_options):
        super().__init__('safety', **node_options)
        self.task = self.declare_parameter('task', '', describe(
            "the task whose safety limits apply (a name of the task registry; '': the one installed)",
            read_only=True)).value
        limits_file = self.declare_parameter('limits_file', '', describe(
            "YAML file with the safety limits (box, step, speed, command rates, watchdog); '': the task's",
            read_only=True)).value
        self.limits_file = limits_file or task_limits_file(self.task)
        # A limits file with no task named: the generic limits alone (no task's rule is looked up).
        self.ruled = bool(self.task or not limits_file)
        self.rule = None
        self.pacing = self.declare_parameter('pacing', 'real_time', describe(
            'real_time: wall clock and a watchdog; as_fast: one control period per policy command',
            read_only=True, constraints=f'one of {PACINGS}')).value
        self.status_period = float(self.declare_parameter('status_period', 1.0, describe(
            'seconds between periodic status and diagnostics messages', read_only=True,
            low=0.05, high=60.0)).value)
        self.add_on_set_parameters_callback(self._refuse_parameter_change)
        self.filter = None
        self._pending_estop = ''
        self._virtual_time = 0.0
        self._cell_stamp = None      # the latest CellState stamp: the cell's clock
        self._last_status = None
        self._states: OnDemandSubscriptions | None = None
        self._watchdog = None
        self.command_rate = FrequencyStatus(min_hz=0.0)
        # The e-stop is served from start-up on: a latch requested before activation is kept.
        self.create_service(SetBool, names.ESTOP, self.on_estop)

    def configure(self) -> None:
        if self.pacing not in PACINGS:
            raise ValueError(f'pacing must be one of {PACINGS}, got {self.pacing!r}')
        self.limits = SafetyLimits.from_yaml(self.limits_file)
        # A task with an action that is not an absolute target (a displacement) brings its own rule.
        self.rule = task_command_rule(self.task, self.limits_file) if self.ruled else None
        self.filter = SafetyFilter(self.limits, self.rule)
        if self._pending_estop:
            self.filter.latch_estop(self._pending_estop, 0.0)
        self.command_rate = FrequencyStatus(min_hz=self.limits.min_command_rate_hz,
                                            max_hz=self.limits.max_command_rate_hz)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.cell_pub = self.create_lifecycle_publisher(Command, names.CELL_COMMAND, 10,
                                                        event_callbacks=lean_publisher_events())
        self.event_pub = self.create_lifecycle_publisher(SafetyEvent, names.SAFETY_EVENTS, 100)
        self.status_pub = self.create_lifecycle_publisher(SafetyStatus, names.SAFETY_STATUS, latched)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self._subs = [self.create_subscription(Command, names.POLICY_COMMAND, self.on_policy_command, 100,
                                               event_callbacks=lean_subscription_events())]
        self._states = OnDemandSubscriptions(self)
        self._states.add('state', CellState, names.CELL_STATE, best_effort)
        # Status is a heartbeat (steady clock: a lockstep cell's sim time stands still while it idles); the
        # watchdog guards the cell's motion, so it runs on the node's clock (sim time in a simulated cell),
        # from the first accepted command on (none until then: see _watch).
        self._timers = [self.create_timer(self.status_period, lambda: self.publish_status(force=True),
                                          clock=Clock(clock_type=ClockType.STEADY_TIME))]
        rule = f' and the task\'s rule {type(self.rule).__name__}' if self.rule is not None else ''
        self.get_logger().info(f'limits from {self.limits_file}{rule} ({self.pacing}): '
                               f'{self.limits.model_dump()}')

    def activate(self) -> None:
        self.active = True
        self._watch()
        self.publish_status(force=True)

    def hold(self, why: str) -> None:
        """Deactivated or shutting down: the cell holds at the agent's position (a stop), then silence."""
        self.take_cell_states()
        stop = self.filter.stop_point() if self.filter is not None else None
        if stop is not None and self.pacing == 'real_time':   # as_fast: a cell without commands stands still
            self._publish_command(stop, self._cell_stamp)
        self.get_logger().info(f'holding the cell: {why}')

    def cleanup(self) -> None:
        for timer in self._timers:
            self.destroy_timer(timer)
        if self._watchdog is not None:
            self.destroy_timer(self._watchdog)
            self._watchdog = None
        for sub in self._subs:
            self.destroy_subscription(sub)
        if self._states is not None:
            self._states.destroy()
            self._states = None
        for pub in (self.cell_pub, self.event_pub, self.status_pub, self.diag_pub):
            self.destroy_lifecycle_publisher(pub)
        self.filter = None

    def latch_estop(self, reason: str) -> None:
        """An error transition of the safety node itself: latch its own e-stop (kept through configure)."""
        self._pending_estop = reason
        if self.filter is not None:
            self.filter.latch_estop(reason, self.now())
            self._watch()

    # ---------------------------------------------------------------- callbacks
    def on_policy_command(self, msg: Command) -> None:
        """Filter one policy command and publish exactly one command to the cell."""
        if not self.active:
            return
        self.command_rate.tick()
        if self.pacing == 'as_fast':
            self._virtual_time += self.limits.control_period
        raw = messages.vector(msg.values)
        self.take_cell_states()
        result = self.filter.filter(raw, msg.header.frame_id, self.now())
        self.apply(result, raw=raw, stamp=msg.header.stamp)

    def take_cell_states(self) -> None:
        """Every cell state received since the last take, in order (the newest valid one is where the
        cell is)."""
        if self._states is not None:
            for msg in self._states.take('state'):
                self.on_cell_state(msg)

    def on_cell_state(self, msg: CellState) -> None:
        """Track the cell's measured position (in the action's coordinates; the tool's for a task's rule)
        and the cell's clock."""
        if self.filter is not None and self.rule is not None:
            self.filter.update_tool(messages.tool_position(msg), step=int(msg.step))
        elif self.filter is not None:
            try:
                self.filter.update_agent(messages.measured_action(msg, self.limits.entry_names))
            except ValueError as exc:
                self.get_logger().warning(f'cell state ignored: {exc}', throttle_duration_sec=5.0)
        self._cell_stamp = msg.header.stamp

    def on_watchdog_tick(self) -> None:
        """Every control period: watchdog hold/stop and the e-stop heartbeat."""
        if not self.active:
            return
        self.take_cell_states()
        self.apply(self.filter.tick(self.now()))

    def on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """data=true latches the e-stop (a stop goes out at once); data=false releases it."""
        if self.filter is None:   # not configured yet: remembered, applied at configure
            self._pending_estop = 'e-stop service' if request.data else ''
            response.success = True
            response.message = 'e-stop latched (before configure)' if request.data else 'e-stop released'
            return response
        self.take_cell_states()
        if request.data:
            was = self.filter.estopped
            result = self.filter.latch_estop('e-stop service', self.now())
            if self.pacing == 'as_fast':
                result.command = None   # a publish would step the cell; the next command becomes a stop
            self.apply(result)
            response.message = 'already latched' if was else 'e-stop latched'
        else:
            was = self.filter.estopped
            self._pending_estop = ''
            self.apply(self.filter.release_estop(self.now()))
            response.message = 'e-stop released' if was else 'e-stop was not latched'
        response.success = True
        return response

    def _refuse_parameter_change(self, params) -> SetParametersResult:
        """Refuse every run-time parameter change: limits are fixed at start-up."""
        if not self.active and self.filter is None:   # start-up overrides of a not yet configured node
            return refuse_non_finite(params)
        names_ = ', '.join(p.name for p in params)
        return SetParametersResult(successful=False, reason=(
            f'refused: safety parameters ({names_}) are read-only at run time; the limits come from '
            f'{self.limits_file} and change only by restarting the safety node'))

    # ---------------------------------------------------------------- helpers
    def now(self) -> float:
        if self.pacing == 'as_fast':
            return self._virtual_time
        return self.get_clock().now().nanoseconds * 1e-9

    def _watch(self) -> None:
        """The watchdog timer exists while the filter is watching (a live command stream, a latched e-stop;
        real-time pacing), first firing a control period after it is made. Not merely cancelled otherwise:
        a cancelled timer on sim time still wakes the executor at every clock message."""
        if self.filter is None or self.pacing != 'real_time':
            return
        if self.filter.watching and self._watchdog is None:
            self._watchdog = self.create_timer(self.limits.control_period, self.on_watchdog_tick)
        elif not self.filter.watching and self._watchdog is not None:
            self.destroy_timer(self._watchdog)
            self._watchdog = None

    def apply(self, result: FilterResult, raw: tuple[float, ...] | None = None, stamp=None) -> None:
        self._watch()
        if stamp is None:
            stamp = self._cell_stamp if self._cell_stamp is not None else self.get_clock().now().to_msg()
        if result.command is not None:
            self._publish_command(result.command, stamp)
        for record in result.records:
            event = SafetyEvent(kind=int(record.kind), reason=record.reason)
            event.header.stamp = stamp
            event.header.frame_id = self.limits.frame_id
            requested = record.requested if record.requested is not None else raw
            # what the policy sent, up to a bound (a hostile vector of any length must not flood the events)
            event.requested = messages.floats((requested or ())[:MAX_EVENT_VALUES])
            event.applied = messages.floats(record.applied or ())
            self.event_pub.publish(event)
        if result.records:
            self.publish_status()

    def _publish_command(self, values, stamp=None) -> None:
        stamp = stamp if stamp is not None else self.get_clock().now().to_msg()
        self.cell_pub.publish(messages.command(values, self.limits.frame_id, stamp))

    def publish_status(self, force: bool = False) -> None:
        if not self.active:
            return
        f, c = self.filter, self.filter.counters
        key = (f.estopped, f.estop_reason, f.watchdog_tripped,
               c.passed, c.modified, c.rejected, c.watchdog_trips)
        if not force and key == self._last_status:
            return
        self._last_status = key
        status = SafetyStatus(estopped=f.estopped, estop_reason=f.estop_reason,
                              watchdog_tripped=f.watchdog_tripped, commands_passed=c.passed,
                              commands_modified=c.modified,
                              commands_rejected=c.rejected, watchdog_trips=c.watchdog_trips)
        status.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(status)
        self.diag_pub.publish(self._diagnostics(status))

    def _diagnostics(self, status: SafetyStatus) -> DiagnosticArray:
        if status.estopped:
            level, message = DiagnosticStatus.ERROR, f'e-stop latched: {status.estop_reason}'
        elif status.watchdog_tripped:
            level, message = DiagnosticStatus.WARN, f'watchdog tripped ({self.limits.watchdog_action})'
        else:
            level, message = DiagnosticStatus.OK, 'ok'
        values = {'commands_passed': status.commands_passed, 'commands_modified': status.commands_modified,
                  'commands_rejected': status.commands_rejected, 'watchdog_trips': status.watchdog_trips,
                  'pacing': self.pacing, 'limits_file': self.limits_file}
        name = f'{self.get_fully_qualified_name()}: safety'
        diag = DiagnosticStatus(level=level, name=name, message=message, hardware_id=self.get_namespace(),
                                values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        rate = diagnostic_status(f'{self.get_fully_qualified_name()}: policy command rate',
                                 self.get_namespace(), self.command_rate.report(time.monotonic()))
        array = DiagnosticArray(status=[diag] if self.pacing == 'as_fast' else [diag, rate])
        array.header.stamp = status.header.stamp
        return array


def main(args=None) -> int:
    return run_node(SafetyNode, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
