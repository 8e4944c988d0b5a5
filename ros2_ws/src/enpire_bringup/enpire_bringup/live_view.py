"""`enpire view`: a running cell served to Foxglove over its WebSocket protocol (foxglove-sdk).

    enpire view                          # cell_0 on ws://127.0.0.1:8765 (open it in Foxglove)
    enpire view --cell cell_0 cell_1 --port 8766 --cameras top oblique

Each ROS topic of the cell (cameras, CameraInfo, /tf_static, cell state, verdicts, trial and safety
events, the safe command) becomes one Foxglove channel with the standard ROS 2 schema
(`ros2msg` definition text, `cdr` messages): the CDR bytes are passed through unchanged, as
foxglove_bridge does, so Foxglove's image, 3D and plot panels read them as they read a bag. Latched
topics (/tf_static, safety status) are re-sent every `--latched-period` s so a client that connects
later still gets them. Loopback only unless --host says otherwise. foxglove-sdk 0.30 speaks the
subprotocol `foxglove.sdk.v1`, which current Foxglove apps offer.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import threading
from dataclasses import dataclass

from enpire_common import names

DEFAULT_CAMERAS = ['top', 'oblique', 'wrist']


@dataclass(frozen=True)
class ViewTopic:
    topic: str
    msgtype: str          # e.g. sensor_msgs/msg/Image
    latched: bool = False


def cell_topics(cell: str, cameras: list[str]) -> list[ViewTopic]:
    def n(name: str) -> str:
        return names.cell_name(cell, name)
    topics = [
        ViewTopic(n(names.CELL_STATE), 'enpire_interfaces/msg/CellState'),
        ViewTopic(n(names.VERDICTS), 'enpire_interfaces/msg/FusedVerdict'),
        ViewTopic(n(names.TRIAL_EVENTS), 'enpire_interfaces/msg/TrialEvent'),
        ViewTopic(n(names.SAFETY_EVENTS), 'enpire_interfaces/msg/SafetyEvent'),
        ViewTopic(n(names.SAFETY_STATUS), 'enpire_interfaces/msg/SafetyStatus', latched=True),
        ViewTopic(n(names.CELL_COMMAND), 'enpire_interfaces/msg/Command'),
    ]
    for cam in cameras:
        topics.append(ViewTopic(n(names.camera_image(cam)), 'sensor_msgs/msg/Image'))
        topics.append(ViewTopic(n(names.camera_info(cam)), 'sensor_msgs/msg/CameraInfo'))
    return topics


def view_topics(cells: list[str], cameras: list[str]) -> list[ViewTopic]:
    topics = [ViewTopic(names.TF_STATIC, 'tf2_msgs/msg/TFMessage', latched=True)]
    for cell in cells:
        topics += cell_topics(cell, cameras)
    return topics


def message_class(msgtype: str):
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def ros2msg_schema(msgtype: str):
    """The Foxglove schema of a ROS 2 type: its definition text with its dependencies, as MCAP has it."""
    import foxglove

    from enpire_rollout.trial_bag import typestore
    text, _ = typestore().generate_msgdef(msgtype, ros_version=2)
    return foxglove.Schema(name=msgtype, encoding='ros2msg', data=text.encode())


class LiveView:
    """Subscribes to the cell's topics (raw CDR) and logs each message to its Foxglove channel."""

    def __init__(self, node, topics: list[ViewTopic], latched_period_s: float = 1.0):
        import foxglove
        from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data

        self.node = node
        self.channels = {}
        self._latched: dict[str, bytes] = {}
        self._lock = threading.Lock()
        # The sensor-data profile (best effort, volatile) matches every writer, the cameras' included;
        # latched topics need a transient-local reader.
        live = qos_profile_sensor_data
        latched = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for t in topics:
            channel = foxglove.Channel(t.topic, schema=ros2msg_schema(t.msgtype), message_encoding='cdr')
            self.channels[t.topic] = channel
            node.create_subscription(message_class(t.msgtype), t.topic,
                                     lambda data, t=t: self.on_message(t, data),
                                     latched if t.latched else live, raw=True)
        if latched_period_s > 0:
            node.create_timer(latched_period_s, self.resend_latched)

    def on_message(self, topic: ViewTopic, data: bytes) -> None:
        if topic.latched:
            with self._lock:
                self._latched[topic.topic] = data
        channel = self.channels[topic.topic]
        if channel.has_sinks():
            channel.log(bytes(data), log_time=self.node.get_clock().now().nanoseconds)

    def resend_latched(self) -> None:
        with self._lock:
            latched = list(self._latched.items())
        now = self.node.get_clock().now().nanoseconds
        for topic, data in latched:
            channel = self.channels[topic]
            if channel.has_sinks():
                channel.log(data, log_time=now)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--cell', nargs='+', default=['cell_0'], help='cell namespaces to serve (default cell_0)')
    p.add_argument('--cameras', nargs='+', default=DEFAULT_CAMERAS, help='camera names of each cell')
    p.add_argument('--host', default='127.0.0.1', help='address to listen on (default: loopback only)')
    p.add_argument('--port', type=int, default=8765, help='WebSocket port (0: any free port)')
    p.add_argument('--latched-period', type=float, default=1.0,
                   help='re-send /tf_static and the safety status this often (s) for late clients')
    p.set_defaults(func=run)


def run(args) -> int:
    import foxglove
    import rclpy
    from enpire_common.executors import SubmitOnceExecutor
    from rclpy.executors import ExternalShutdownException

    topics = view_topics(args.cell, args.cameras)
    try:
        server = foxglove.start_server(name='enpire', host=args.host, port=args.port)
    except Exception as exc:  # noqa: BLE001 - e.g. the port is taken: say so, exit non-zero
        print(f'enpire view: cannot serve on {args.host}:{args.port}: {exc}', file=sys.stderr)
        return 2
    try:
        with rclpy.init():
            node = rclpy.create_node('enpire_view')
            LiveView(node, topics, args.latched_period)
            print(f'enpire view: serving {len(topics)} topics of {", ".join(args.cell)} on '
                  f'ws://{args.host}:{server.port} (Foxglove: open a connection to it)', flush=True)
            executor = SubmitOnceExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        server.stop()
    return 0
