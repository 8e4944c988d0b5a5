"""Command adapter: the cell's safe command out to a common ROS 2 control interface, and proprioception in.

Subscribes to the safety node's output (`names.CELL_COMMAND`, geometry_msgs/PointStamped in workspace
pixels of frame "table") and sends it, mapped to the robot's base frame by `pixel_to_robot`, as the
interface chosen by `interface`:
- `pose`: geometry_msgs/PoseStamped target (a Cartesian / impedance controller), one per command;
- `twist`: geometry_msgs/TwistStamped at `rate_hz`, proportional toward the target from the measured
  pose (MoveIt Servo style), norm clipped to `max_linear_speed`; zero when no command for
  `command_timeout_s` or no feedback yet;
- `joint_trajectory`: trajectory_msgs/JointTrajectory, one point reached `time_from_start_s` after the
  command (ros2_control's joint_trajectory_controller); joint positions from `joint_map`: `gantry`
  (prismatic x, y[, z]) or `package.module:function(x, y, z) -> positions` (your IK).
With `feedback` = `pose` (PoseStamped of the tool in the robot frame) or `joint_state`
(sensor_msgs/JointState, gantry joints), and `publish_cell_state`, the node also publishes the cell's
`names.CELL_STATE` in table pixels, which a simulated cell gets from the simulator.

Run: python -m enpire_bringup.adapters.command_adapter_node --ros-args -r __ns:=/cell_0 \
       -p interface:=joint_trajectory -p output_topic:=/joint_trajectory_controller/joint_trajectory
"""
from __future__ import annotations

import math
import time

import rclpy
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PointStamped, PoseStamped, TwistStamped
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from enpire_bringup.adapters.mapping import TableToRobot, load_joint_map, twist_toward
from enpire_env import names
from enpire_env.executors import SubmitOnceExecutor
from enpire_interfaces.msg import CellState

INTERFACES = ('pose', 'twist', 'joint_trajectory')
DEFAULT_OUTPUT = {'pose': 'robot/target_pose', 'twist': 'robot/delta_twist_cmds',
                  'joint_trajectory': 'robot/joint_trajectory'}
FEEDBACKS = ('none', 'pose', 'joint_state')


class CommandAdapter(Node):
    def __init__(self):
        super().__init__('command_adapter')
        p = self.declare_parameter
        self.interface = p('interface', 'pose').value
        if self.interface not in INTERFACES:
            raise ValueError(f'interface must be one of {INTERFACES}, got {self.interface!r}')
        output_topic = p('output_topic', '').value or DEFAULT_OUTPUT[self.interface]
        self.robot_frame = p('robot_frame', 'base_link').value
        default = TableToRobot()
        self.mapping = TableToRobot(
            affine=list(p('pixel_to_robot', list(default.affine)).value),
            tool_z=float(p('tool_z', default.tool_z).value),
            tool_orientation_xyzw=list(p('tool_orientation_xyzw', list(default.tool_orientation_xyzw)).value))
        self.rate_hz = float(p('rate_hz', 50.0).value)
        self.gain = float(p('twist_gain', 2.0).value)
        self.max_speed = float(p('max_linear_speed', 0.25).value)
        self.deadband = float(p('deadband_m', 0.0005).value)
        self.command_timeout_s = float(p('command_timeout_s', 0.5).value)
        self.joint_names = list(p('joint_names', ['x_joint', 'y_joint']).value)
        self.time_from_start_s = float(p('time_from_start_s', 0.1).value)
        joint_map_spec = p('joint_map', 'gantry').value
        self.feedback = p('feedback', 'none').value
        feedback_topic = p('feedback_topic', '').value
        publish_cell_state = bool(p('publish_cell_state', False).value)
        if self.feedback not in FEEDBACKS:
            raise ValueError(f'feedback must be one of {FEEDBACKS}, got {self.feedback!r}')
        if self.interface == 'twist' and self.feedback == 'none':
            raise ValueError('interface twist needs feedback (pose or joint_state) to close the loop')
        self.joint_map = (load_joint_map(joint_map_spec, len(self.joint_names))
                          if self.interface == 'joint_trajectory' or self.feedback == 'joint_state' else None)

        self.target_px: tuple[float, float] | None = None
        self.target_time = 0.0
        self.measured_xy: tuple[float, float] | None = None
        self.measured_px_prev: tuple[float, float, float] | None = None
        self.velocity_px = (0.0, 0.0)
        self.sent = 0

        out_type = {'pose': PoseStamped, 'twist': TwistStamped, 'joint_trajectory': JointTrajectory}
        self.out_pub = self.create_publisher(out_type[self.interface], output_topic, 10)
        self.create_subscription(PointStamped, names.CELL_COMMAND, self.on_command, 10)
        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        if self.feedback == 'pose':
            self.create_subscription(PoseStamped, feedback_topic or 'robot/current_pose', self.on_pose,
                                     best_effort)
        elif self.feedback == 'joint_state':
            self.create_subscription(JointState, feedback_topic or '/joint_states', self.on_joint_state,
                                     best_effort)
        self.state_pub = (self.create_publisher(CellState, names.CELL_STATE, 10)   # reliable, as the sim's
                          if publish_cell_state else None)
        self.step = 0
        if self.interface == 'twist':
            self.create_timer(1.0 / self.rate_hz, self.on_twist_tick)
        self.get_logger().info(
            f'command adapter ready: {names.CELL_COMMAND} -> {self.out_pub.topic_name} ({self.interface}), '
            f'feedback {self.feedback}, cell_state {"on" if self.state_pub else "off"}')

    # ------------------------------------------------------------------ command out
    def on_command(self, msg: PointStamped) -> None:
        if msg.header.frame_id and msg.header.frame_id != names.TABLE_FRAME:
            self.get_logger().warning(f'ignoring a command in frame {msg.header.frame_id!r}',
                                      throttle_duration_sec=5.0)
            return
        if not (math.isfinite(msg.point.x) and math.isfinite(msg.point.y)):
            return
        self.target_px = (msg.point.x, msg.point.y)
        self.target_time = time.monotonic()
        x, y, z = self.mapping.to_robot(*self.target_px)
        if self.interface == 'pose':
            out = PoseStamped()
            out.header.stamp = self.get_clock().now().to_msg()
            out.header.frame_id = self.robot_frame
            out.pose.position.x, out.pose.position.y, out.pose.position.z = x, y, z
            q = self.mapping.quaternion
            out.pose.orientation.x, out.pose.orientation.y, out.pose.orientation.z, out.pose.orientation.w = q
            self.publish(out)
        elif self.interface == 'joint_trajectory':
            out = JointTrajectory()
            out.header.frame_id = self.robot_frame     # stamp zero: start now (JTC convention)
            out.joint_names = self.joint_names
            positions = [float(v) for v in self.joint_map(x, y, z)]
            if len(positions) != len(self.joint_names):
                self.get_logger().error(f'joint_map gave {len(positions)} positions for '
                                        f'{len(self.joint_names)} joints', throttle_duration_sec=5.0)
                return
            secs = int(self.time_from_start_s)
            point = JointTrajectoryPoint(positions=positions, time_from_start=Duration(
                sec=secs, nanosec=int(round((self.time_from_start_s - secs) * 1e9))))
            out.points = [point]
            self.publish(out)
        self.publish_cell_state()

    def on_twist_tick(self) -> None:
        out = TwistStamped()
        out.header.stamp = self.get_clock().now().to_msg()
        out.header.frame_id = self.robot_frame
        fresh = self.target_px is not None and time.monotonic() - self.target_time <= self.command_timeout_s
        if fresh and self.measured_xy is not None:
            target = self.mapping.to_robot(*self.target_px)[:2]
            out.twist.linear.x, out.twist.linear.y = twist_toward(target, self.measured_xy, self.gain,
                                                                  self.max_speed, self.deadband)
        self.publish(out)

    def publish(self, msg) -> None:
        self.out_pub.publish(msg)
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
        if self.state_pub is None or self.measured_px_prev is None:
            return
        self.step += 1
        state = CellState()
        state.header.stamp = self.get_clock().now().to_msg()
        state.header.frame_id = names.TABLE_FRAME
        state.step = self.step
        state.agent_position.x, state.agent_position.y = self.measured_px_prev[:2]
        state.agent_velocity.x, state.agent_velocity.y = self.velocity_px
        if self.target_px is not None:
            state.commanded_target.x, state.commanded_target.y = self.target_px
        self.state_pub.publish(state)


def main(args=None) -> None:
    try:
        with rclpy.init(args=args):
            node = CommandAdapter()
            executor = SubmitOnceExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == '__main__':
    main()
