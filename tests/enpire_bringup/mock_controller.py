"""A mock robot controller for adapter tests: takes what the command adapter sends, checks and records it,
and closes the loop the way a real controller would (integrates twists, follows trajectories, reports)."""
from __future__ import annotations

import threading

from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState
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
        if interface == 'pose':
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

    def publish_feedback(self):
        with self.lock:
            x, y = self.xy
        if self.interface == 'joint_trajectory':
            msg = JointState(name=self.joint_names, position=[x, y])
            msg.header.stamp = self.node.get_clock().now().to_msg()
        else:
            msg = PoseStamped()
            msg.header.stamp = self.node.get_clock().now().to_msg()
            msg.header.frame_id = 'base_link'
            msg.pose.position.x, msg.pose.position.y = x, y
            msg.pose.orientation.w = 1.0
        self.feedback.publish(msg)
