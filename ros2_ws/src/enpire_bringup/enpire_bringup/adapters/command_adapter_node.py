"""Command adapter: the cell's safe command out to a common ROS 2 control interface, and proprioception in.

Subscribes to the safety node's output (`names.CELL_COMMAND`, enpire_interfaces/Command: a target
(x, y) in the table plane of frame "table") and sends it, mapped to the robot's base frame by
`pixel_to_robot`, as the interface chosen by `interface`:
- `pose`: geometry_msgs/PoseStamped target (a Cartesian / impedance controller), one per command;
- `twist`: geometry_msgs/TwistStamped at `rate_hz`, proportional toward the target from the measured
  pose (MoveIt Servo style), norm clipped to `max_linear_speed`; zero when no command for
  `command_timeout_s` or no feedback yet;
- `joint_trajectory`: trajectory_msgs/JointTrajectory on a topic, one point reached `time_from_start_s`
  after the command;
- `follow_joint_trajectory`: ros2_control's joint_trajectory_controller through its action
  (`<controller>/follow_joint_trajectory`, control_msgs/FollowJointTrajectory): one goal per command with
  goal tolerances (`goal_tolerance_m`, `path_tolerance_m`, `goal_time_tolerance_s`); the result's error
  code and error string are logged and counted in the diagnostics; deactivation cancels the goal (the
  controller holds);
- `forward_command`: ros2_control's forward_command_controller (`<controller>/commands`,
  std_msgs/Float64MultiArray of joint positions).
Joint positions come from `joint_map`: `gantry` (prismatic x, y[, z]) or `package.module:function(x, y, z)`.
With `feedback` = `pose` (PoseStamped of the tool in the robot frame) or `joint_state`
(sensor_msgs/JointState, gantry joints), and `publish_cell_state`, the node also publishes the cell's
`names.CELL_STATE` in table pixels, which a simulated cell gets from the simulator.

A managed node (enpire_common.lifecycle): nothing goes to the robot before `activate`; `deactivate` holds
(a pose at the measured position, a zero twist, a cancelled trajectory goal); an error transition (e.g.
no trajectory action server at activation) latches the cell's e-stop. The gains (`twist_gain`,
`max_linear_speed`, `deadband_m`) may change at run time within their ranges; every other parameter is
read-only. Diagnostics on /diagnostics: the command rate (frequency status) and the controller's results.

Run: python -m enpire_bringup.adapters.command_adapter_node --ros-args -r __ns:=/cell_0 \
       -p interface:=follow_joint_trajectory -p controller:=/joint_trajectory_controller -p autostart:=true
"""
from __future__ import annotations

import time

from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from enpire_common import messages, names
from enpire_common.action_client import ActionClient
from enpire_common.lifecycle import ManagedCellNode
from enpire_common.node_main import run_node
from enpire_common.parameters import describe, refuse_non_finite
from enpire_common.rate_status import FrequencyStatus, diagnostic_status
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from enpire_bringup.adapters.mapping import TableToRobot, load_joint_map, twist_toward
from enpire_interfaces.msg import CellState, Command

INTERFACES = ('pose', 'twist', 'joint_trajectory', 'follow_joint_trajectory', 'forward_command')
JOINT_INTERFACES = ('joint_trajectory', 'follow_joint_trajectory', 'forward_command')
DEFAULT_OUTPUT = {'pose': 'robot/target_pose', 'twist': 'robot/delta_twist_cmds',
                  'joint_trajectory': 'robot/joint_trajectory'}
DEFAULT_CONTROLLER = {'follow_joint_trajectory': 'joint_trajectory_controller',
                      'forward_command': 'forward_position_controller'}
FEEDBACKS = ('none', 'pose', 'joint_state')
# control_msgs/action/FollowJointTrajectory result codes
ERROR_CODES = ('SUCCESSFUL', 'INVALID_GOAL', 'INVALID_JOINTS', 'OLD_HEADER_TIMESTAMP',
               'PATH_TOLERANCE_VIOLATED', 'GOAL_TOLERANCE_VIOLATED')


def _duration(seconds: float) -> Duration:
    whole = int(seconds)
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


class CommandAdapter(ManagedCellNode):
    def __init__(self, **node_options):
        super().__init__('command_adapter', **node_options)
        p, ro = self.declare_parameter, dict(read_only=True)
        default = TableToRobot()
        self.interface = p('interface', 'pose', describe(
            'how commands reach the robot', constraints=f'one of {INTERFACES}', **ro)).value
        self.output_topic = p('output_topic', '', describe(
            "topic of pose/twist/joint_trajectory ('' = robot/target_pose | robot/delta_twist_cmds | "
            'robot/joint_trajectory)', **ro)).value
        self.controller = p('controller', '', describe(
            "ros2_control controller name ('' = joint_trajectory_controller | forward_position_controller)",
            **ro)).value
        self.robot_frame = p('robot_frame', 'base_link', describe('the robot base frame', **ro)).value
        affine = list(p('pixel_to_robot', list(default.affine), describe(
            'table pixel -> robot metres: [a, b, tx, c, d, ty], x = a px + b py + tx, y = c px + d py + ty',
            **ro)).value)
        tool_z = p('tool_z', default.tool_z, describe('tool height in the robot frame (m)',
                                                      low=-2.0, high=2.0, **ro)).value
        orientation = list(p('tool_orientation_xyzw', list(default.tool_orientation_xyzw), describe(
            'tool orientation quaternion (x, y, z, w)', **ro)).value)
        self.rate_hz = p('rate_hz', 50.0, describe('twist control rate (Hz)', low=1.0, high=1000.0,
                                                   **ro)).value
        self.gain = p('twist_gain', 2.0, describe('twist: proportional gain (1/s)', low=0.0, high=50.0)).value
        self.max_speed = p('max_linear_speed', 0.25, describe(
            'twist: largest Cartesian speed (m/s)', low=0.0, high=2.0)).value
        self.deadband = p('deadband_m', 0.0005, describe('twist: no motion closer than this (m)',
                                                         low=0.0, high=0.1)).value
        self.command_timeout_s = p('command_timeout_s', 0.5, describe(
            'twist: zero twist when no command for this long (s)', low=0.01, high=10.0, **ro)).value
        self.joint_names = list(p('joint_names', ['x_joint', 'y_joint'], describe(
            'joint names of the commanded joints', **ro)).value)
        self.time_from_start_s = p('time_from_start_s', 0.1, describe(
            'trajectories: time to reach each commanded point (s)', low=0.001, high=10.0, **ro)).value
        self.joint_map_spec = p('joint_map', 'gantry', describe(
            "'gantry' or 'package.module:function' taking (x, y, z) -> joint positions", **ro)).value
        self.goal_tolerance = p('goal_tolerance_m', 0.005, describe(
            'follow_joint_trajectory: position tolerance of each joint at the goal (m or rad; 0 = the '
            "controller's default)", low=0.0, high=1.0, **ro)).value
        self.path_tolerance = p('path_tolerance_m', 0.0, describe(
            "follow_joint_trajectory: position tolerance along the path (0 = the controller's default)",
            low=0.0, high=1.0, **ro)).value
        self.goal_time_tolerance = p('goal_time_tolerance_s', 0.5, describe(
            'follow_joint_trajectory: time allowed past the trajectory end to reach the goal (s)',
            low=0.0, high=10.0, **ro)).value
        self.server_timeout_s = p('server_timeout_s', 5.0, describe(
            'follow_joint_trajectory: wait this long for the action server at activation (s)',
            low=0.0, high=120.0, **ro)).value
        self.feedback = p('feedback', 'none', describe(
            'proprioception source', constraints=f'one of {FEEDBACKS}', **ro)).value
        self.feedback_topic = p('feedback_topic', '', describe(
            "'' = robot/current_pose or /joint_states", **ro)).value
        self.publish_state = bool(p('publish_cell_state', False, describe(
            "publish the cell's cell_state from the feedback", **ro)).value)
        self.expected_rate_hz = p('expected_command_rate_hz', 0.0, describe(
            'diagnostics: lowest acceptable command rate while commands flow (0: idle is fine)',
            low=0.0, high=1000.0, **ro)).value
        self.diagnostics_period_s = p('diagnostics_period_s', 1.0, describe(
            'seconds between diagnostics messages', low=0.1, high=60.0, **ro)).value
        self.mapping_args = (affine, tool_z, orientation)
        self.add_on_set_parameters_callback(refuse_non_finite)
        self.add_post_set_parameters_callback(self._apply_gains)
        self.target_px: tuple[float, float] | None = None
        self.target_time = 0.0
        self.measured_xy: tuple[float, float] | None = None
        self.measured_px_prev: tuple[float, float, float] | None = None
        self.velocity_px = (0.0, 0.0)
        self.sent = 0
        self.step = 0
        self.goal_handle = None
        self.results: dict[str, int] = {}
        self.last_error = ''
        self.command_rate = FrequencyStatus(min_hz=self.expected_rate_hz)
        self._entities: list = []

    def _apply_gains(self, params) -> None:
        for param in params:
            if param.name == 'twist_gain':
                self.gain = param.value
            elif param.name == 'max_linear_speed':
                self.max_speed = param.value
            elif param.name == 'deadband_m':
                self.deadband = param.value

    # ------------------------------------------------------------------ lifecycle
    def configure(self) -> None:
        if self.interface not in INTERFACES:
            raise ValueError(f'interface must be one of {INTERFACES}, got {self.interface!r}')
        if self.feedback not in FEEDBACKS:
            raise ValueError(f'feedback must be one of {FEEDBACKS}, got {self.feedback!r}')
        if self.interface == 'twist' and self.feedback == 'none':
            raise ValueError('interface twist needs feedback (pose or joint_state) to close the loop')
        affine, tool_z, orientation = self.mapping_args
        self.mapping = TableToRobot(affine=affine, tool_z=tool_z, tool_orientation_xyzw=orientation)
        self.joint_map = (load_joint_map(self.joint_map_spec, len(self.joint_names))
                          if self.interface in JOINT_INTERFACES or self.feedback == 'joint_state' else None)
        controller = (self.controller or DEFAULT_CONTROLLER.get(self.interface, '')).rstrip('/')
        self.out_pub = self.action = None
        if self.interface == 'follow_joint_trajectory':
            from control_msgs.action import FollowJointTrajectory
            self.action = ActionClient(self, FollowJointTrajectory, f'{controller}/follow_joint_trajectory')
            target = self.action._action_name
        else:
            out_type = {'pose': PoseStamped, 'twist': TwistStamped, 'joint_trajectory': JointTrajectory,
                        'forward_command': Float64MultiArray}[self.interface]
            topic = (f'{controller}/commands' if self.interface == 'forward_command'
                     else self.output_topic or DEFAULT_OUTPUT[self.interface])
            self.out_pub = self.create_lifecycle_publisher(out_type, topic, 10)
            target = self.out_pub.topic_name
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.state_pub = (self.create_lifecycle_publisher(CellState, names.CELL_STATE, 10)
                          if self.publish_state else None)
        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self._entities = [self.create_subscription(Command, names.CELL_COMMAND, self.on_command, 10)]
        if self.feedback == 'pose':
            self._entities.append(self.create_subscription(
                PoseStamped, self.feedback_topic or 'robot/current_pose', self.on_pose, best_effort))
        elif self.feedback == 'joint_state':
            self._entities.append(self.create_subscription(
                JointState, self.feedback_topic or '/joint_states', self.on_joint_state, best_effort))
        self._timers = [self.create_timer(self.diagnostics_period_s, self.publish_diagnostics)]
        if self.interface == 'twist':
            self._timers.append(self.create_timer(1.0 / self.rate_hz, self.on_twist_tick))
        self.get_logger().info(
            f'command adapter configured: {names.CELL_COMMAND} -> {target} ({self.interface}), '
            f'feedback {self.feedback}, cell_state {"on" if self.state_pub else "off"}')

    def activate(self) -> None:
        if self.action is not None and not self.action.wait_for_server(timeout_sec=self.server_timeout_s):
            raise RuntimeError(f'no action server {self.action._action_name} after {self.server_timeout_s} s')
        self.get_logger().info('command adapter ready')

    def hold(self, why: str) -> None:
        """Keep the robot where it is: cancel the trajectory goal, zero twist, or the measured pose."""
        if self.goal_handle is not None:
            self.goal_handle.cancel_goal_async()      # a cancelled JTC goal holds its current position
            self.goal_handle = None
        elif self.interface == 'twist':
            self.publish(self._twist(0.0, 0.0))
        elif self.measured_xy is not None:
            self.send(*self.measured_xy)
        self.target_px = None
        self.get_logger().info(f'holding the robot: {why}')

    def cleanup(self) -> None:
        for timer in self._timers:
            self.destroy_timer(timer)
        for sub in self._entities:
            self.destroy_subscription(sub)
        if self.action is not None:
            self.action.destroy()
        for pub in (self.out_pub, self.diag_pub, self.state_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)

    # ------------------------------------------------------------------ command out
    def on_command(self, msg: Command) -> None:
        if not self.active:
            return
        problem = messages.command_problem(msg, 2, names.TABLE_FRAME)   # a target (x, y) in the table plane
        if problem:
            self.get_logger().warning(f'ignoring a command: {problem}', throttle_duration_sec=5.0)
            return
        self.target_px = messages.vector(msg.values)
        self.target_time = time.monotonic()
        x, y, _ = self.mapping.to_robot(*self.target_px)
        if self.interface != 'twist':
            self.send(x, y)
        self.publish_cell_state()

    def send(self, x: float, y: float) -> None:
        """One target in the robot frame, as the configured interface (not twist)."""
        z = self.mapping.tool_z
        if self.interface == 'pose':
            out = PoseStamped()
            out.header.stamp = self.get_clock().now().to_msg()
            out.header.frame_id = self.robot_frame
            out.pose.position.x, out.pose.position.y, out.pose.position.z = x, y, z
            q = self.mapping.quaternion
            out.pose.orientation.x, out.pose.orientation.y, out.pose.orientation.z, out.pose.orientation.w = q
            self.publish(out)
            return
        positions = [float(v) for v in self.joint_map(x, y, z)]
        if len(positions) != len(self.joint_names):
            self.get_logger().error(f'joint_map gave {len(positions)} positions for '
                                    f'{len(self.joint_names)} joints', throttle_duration_sec=5.0)
            return
        if self.interface == 'forward_command':
            self.publish(Float64MultiArray(data=positions))
            return
        trajectory = JointTrajectory(joint_names=self.joint_names, points=[JointTrajectoryPoint(
            positions=positions, time_from_start=_duration(self.time_from_start_s))])
        trajectory.header.frame_id = self.robot_frame     # stamp zero: start now (JTC convention)
        if self.interface == 'joint_trajectory':
            self.publish(trajectory)
        else:
            self.send_goal(trajectory)

    def send_goal(self, trajectory: JointTrajectory) -> None:
        from control_msgs.action import FollowJointTrajectory
        from control_msgs.msg import JointTolerance

        goal = FollowJointTrajectory.Goal(trajectory=trajectory,
                                          goal_time_tolerance=_duration(self.goal_time_tolerance))
        goal.goal_tolerance = [JointTolerance(name=n, position=self.goal_tolerance) for n in self.joint_names]
        goal.path_tolerance = [JointTolerance(name=n, position=self.path_tolerance) for n in self.joint_names]
        self.command_rate.tick()
        self.sent += 1
        self.action.send_goal_async(goal).add_done_callback(self.on_goal_response)

    def on_goal_response(self, future) -> None:
        handle = future.result()
        if not handle.accepted:
            self._count('rejected', 'the controller rejected the goal')
            return
        self.goal_handle = handle if self.active else None
        if not self.active:                 # accepted after a hold: do not let it run
            handle.cancel_goal_async()
        handle.get_result_async().add_done_callback(self.on_result)

    def on_result(self, future) -> None:
        from action_msgs.msg import GoalStatus
        from control_msgs.action import FollowJointTrajectory

        response = future.result()
        codes = {getattr(FollowJointTrajectory.Result, n): n for n in ERROR_CODES}
        if response.status == GoalStatus.STATUS_CANCELED:
            self._count('canceled')
        elif response.status == GoalStatus.STATUS_SUCCEEDED and response.result.error_code == 0:
            self._count('succeeded')
        elif response.status == GoalStatus.STATUS_ABORTED and response.result.error_code == 0:
            self._count('preempted')          # replaced by the next command's goal
        else:
            code = response.result.error_code
            name = codes.get(code, str(code))
            self._count(name, f'{name}: {response.result.error_string}')

    def _count(self, outcome: str, error: str = '') -> None:
        self.results[outcome] = self.results.get(outcome, 0) + 1
        if error:
            self.last_error = error
            self.get_logger().warning(f'trajectory goal: {error}', throttle_duration_sec=2.0)

    def on_twist_tick(self) -> None:
        if not self.active:
            return
        fresh = self.target_px is not None and time.monotonic() - self.target_time <= self.command_timeout_s
        vx = vy = 0.0
        if fresh and self.measured_xy is not None:
            target = self.mapping.to_robot(*self.target_px)[:2]
            vx, vy = twist_toward(target, self.measured_xy, self.gain, self.max_speed, self.deadband)
        self.publish(self._twist(vx, vy))

    def _twist(self, vx: float, vy: float) -> TwistStamped:
        out = TwistStamped()
        out.header.stamp = self.get_clock().now().to_msg()
        out.header.frame_id = self.robot_frame
        out.twist.linear.x, out.twist.linear.y = vx, vy
        return out

    def publish(self, msg) -> None:
        self.out_pub.publish(msg)
        self.command_rate.tick()
        self.sent += 1

    # ------------------------------------------------------------------ feedback in
    def on_pose(self, msg: PoseStamped) -> None:
        self.on_measured(msg.pose.position.x, msg.pose.position.y)

    def on_joint_state(self, msg: JointState) -> None:
        by_name = dict(zip(msg.name, msg.position, strict=False))
        if not all(n in by_name for n in self.joint_names[:2]):
            return
        self.on_measured(by_name[self.joint_names[0]], by_name[self.joint_names[1]])

    def on_measured(self, x: float, y: float) -> None:
        self.measured_xy = (x, y)
        now = time.monotonic()
        px, py = self.mapping.to_table(x, y)
        if self.measured_px_prev is not None:
            dt = now - self.measured_px_prev[2]
            if dt > 1e-4:
                prev_x, prev_y, _ = self.measured_px_prev
                self.velocity_px = ((px - prev_x) / dt, (py - prev_y) / dt)
        self.measured_px_prev = (px, py, now)
        self.publish_cell_state()

    def publish_cell_state(self) -> None:
        if self.state_pub is None or self.measured_px_prev is None or not self.active:
            return
        self.step += 1
        state = CellState(step=self.step, commanded=messages.floats(self.target_px or ()))
        state.header.stamp = self.get_clock().now().to_msg()
        state.header.frame_id = names.TABLE_FRAME
        messages.set_tool(state, (*self.measured_px_prev[:2], 0.0), (*self.velocity_px, 0.0))
        self.state_pub.publish(state)

    def publish_diagnostics(self) -> None:
        if not self.active:
            return
        prefix = f'{self.get_fully_qualified_name()}: '
        rate = diagnostic_status(prefix + 'command rate', self.get_namespace(),
                                 self.command_rate.report(time.monotonic()))
        rate.values.append(KeyValue(key='interface', value=self.interface))
        statuses = [rate]
        if self.interface == 'follow_joint_trajectory':
            fine = ('succeeded', 'canceled', 'preempted')
            failed = sum(n for k, n in self.results.items() if k not in fine)
            level = DiagnosticStatus.WARN if failed else DiagnosticStatus.OK
            statuses.append(DiagnosticStatus(
                level=level, name=prefix + 'trajectory goals', hardware_id=self.get_namespace(),
                message=self.last_error or 'no failed goals',
                values=[KeyValue(key=k, value=str(n)) for k, n in sorted(self.results.items())]))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)


def main(args=None) -> int:
    return run_node(CommandAdapter, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
