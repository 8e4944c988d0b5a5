"""A mock robot controller for adapter tests: takes what the command adapter sends, checks and records it,
and closes the loop the way a real controller would (integrates twists, follows trajectories, reports).
`follow_joint_trajectory` plays ros2_control's joint_trajectory_controller action server (tolerances
checked, an error code on request, cancel = hold); `forward_command` its forward_command_controller."""
from __future__ import annotations

import threading
import time

from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory


class MockController:
    def __init__(self, node, interface: str, ns: str = '/cell_0', start_xy=(0.45, 0.0), rate_hz=50.0,
                 joint_names=('x_joint', 'y_joint')):
        self.node = node
        self.interface = interface
        self.xy = list(start_xy)
        self.joint_names = list(joint_names)
        self.received: list = []
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self.dt = 1.0 / rate_hz
        self.fail_with: tuple[int, str] | None = None     # (error_code, error_string) for the next goals
        self.canceled = 0
        self.current = None
        if interface == 'follow_joint_trajectory':
            from control_msgs.action import FollowJointTrajectory
            from rclpy.action import ActionServer, CancelResponse
            from rclpy.callback_groups import ReentrantCallbackGroup

            self.server = ActionServer(node, FollowJointTrajectory,
                                       f'{ns}/joint_trajectory_controller/follow_joint_trajectory',
                                       self.execute, callback_group=ReentrantCallbackGroup(),
                                       cancel_callback=lambda _goal: CancelResponse.ACCEPT)
            self.feedback = node.create_publisher(JointState, '/joint_states', 10)
        elif interface == 'forward_command':
            node.create_subscription(Float64MultiArray, f'{ns}/forward_position_controller/commands',
                                     self.on_forward, 10)
            self.feedback = node.create_publisher(JointState, '/joint_states', 10)
        elif interface == 'pose':
            node.create_subscription(PoseStamped, f'{ns}/robot/target_pose', self.on_pose, 10)
            self.feedback = node.create_publisher(PoseStamped, f'{ns}/robot/current_pose', 10)
        elif interface == 'twist':
            node.create_subscription(TwistStamped, f'{ns}/robot/delta_twist_cmds', self.on_twist, 10)
            self.feedback = node.create_publisher(PoseStamped, f'{ns}/robot/current_pose', 10)
        else:
            node.create_subscription(JointTrajectory, f'{ns}/robot/joint_trajectory', self.on_trajectory, 10)
            self.feedback = node.create_publisher(JointState, '/joint_states', 10)
        node.create_timer(self.dt, self.publish_feedback)

    def check(self, ok: bool, what: str):
        if not ok:
            self.problems.append(what)

    def on_pose(self, msg: PoseStamped):
        self.check(msg.header.frame_id == 'base_link', f'pose frame {msg.header.frame_id!r}')
        q = msg.pose.orientation
        self.check(abs(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w - 1.0) < 1e-6, 'unnormalised quaternion')
        with self.lock:
            self.received.append(msg)
            self.xy = [msg.pose.position.x, msg.pose.position.y]   # an ideal Cartesian controller

    def on_twist(self, msg: TwistStamped):
        self.check(msg.header.frame_id == 'base_link', f'twist frame {msg.header.frame_id!r}')
        t = msg.twist
        self.check(t.linear.z == 0.0 and t.angular.x == t.angular.y == t.angular.z == 0.0, 'off-plane twist')
        self.check((t.linear.x ** 2 + t.linear.y ** 2) ** 0.5 <= 0.25 + 1e-9, 'twist above max speed')
        with self.lock:
            self.received.append(msg)
            self.xy[0] += t.linear.x * self.dt
            self.xy[1] += t.linear.y * self.dt

    def on_trajectory(self, msg: JointTrajectory):
        self.check(list(msg.joint_names) == self.joint_names, f'joint names {list(msg.joint_names)}')
        self.check(len(msg.points) == 1, f'{len(msg.points)} points')
        point = msg.points[0]
        self.check(len(point.positions) == len(self.joint_names), 'positions do not match joint names')
        self.check(point.time_from_start.sec == 0 and point.time_from_start.nanosec == 100_000_000,
                   'time_from_start is not 0.1 s')
        with self.lock:
            self.received.append(msg)
            self.xy = list(point.positions[:2])

    def execute(self, goal_handle):
        """One trajectory goal: check it, move there over time_from_start (or until cancelled), report."""
        from control_msgs.action import FollowJointTrajectory

        goal = goal_handle.request
        self.check(list(goal.trajectory.joint_names) == self.joint_names, 'goal joint names')
        self.check([t.name for t in goal.goal_tolerance] == self.joint_names, 'goal tolerance per joint')
        self.check(all(t.position > 0 for t in goal.goal_tolerance), 'goal tolerance not set')
        self.check(goal.goal_time_tolerance.nanosec > 0 or goal.goal_time_tolerance.sec > 0,
                   'goal time tolerance not set')
        with self.lock:
            self.received.append(goal)
            failure = self.fail_with
            self.current = goal_handle            # a new goal preempts the one running (as the JTC does)
        result = FollowJointTrajectory.Result()
        point = goal.trajectory.points[-1]
        deadline = time.monotonic() + point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
        while time.monotonic() < deadline:
            if self.current is not goal_handle:
                goal_handle.abort()
                return result                    # preempted: error_code SUCCESSFUL, as the JTC reports
            if goal_handle.is_cancel_requested:
                with self.lock:
                    self.canceled += 1           # a cancelled goal holds where it is
                goal_handle.canceled()
                return result
            time.sleep(0.01)
        if failure is not None:
            result.error_code, result.error_string = failure
            goal_handle.abort()
            return result
        with self.lock:
            self.xy = list(point.positions[:2])
        goal_handle.succeed()
        return result

    def on_forward(self, msg: Float64MultiArray):
        self.check(len(msg.data) == len(self.joint_names), f'{len(msg.data)} commands for the joints')
        with self.lock:
            self.received.append(msg)
            self.xy = list(msg.data[:2])

    def publish_feedback(self):
        with self.lock:
            x, y = self.xy
        if self.interface in ('joint_trajectory', 'follow_joint_trajectory', 'forward_command'):
            msg = JointState(name=self.joint_names, position=[x, y])
            msg.header.stamp = self.node.get_clock().now().to_msg()
        else:
            msg = PoseStamped()
            msg.header.stamp = self.node.get_clock().now().to_msg()
            msg.header.frame_id = 'base_link'
            msg.pose.position.x, msg.pose.position.y = x, y
            msg.pose.orientation.w = 1.0
        self.feedback.publish(msg)
