"""`enpire replay BAG --rate X`: republish a trial bag on the graph (rclpy publishes the recorded CDR bytes).

The bag's absolute topic names are kept (`/cell_0/cell_state`, ...) unless remapped (`remaps`, `prefix`);
`rate` scales the recorded timing (0: as fast as possible). A replay never drives a live cell unless
asked: the recorded commands (`cmd/target`, `cmd/policy_target`) are left out unless `publish_commands`.
With `clock`, the bag time goes out on /clock (rosgraph_msgs/Clock), so nodes with use_sim_time follow
it as `ros2 bag play --clock` does. Every publisher waits for its subscribers' acknowledgements before exit.
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path

from enpire_common import names
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError

COMMAND_TOPICS = (names.CELL_COMMAND, names.POLICY_COMMAND)


class ReplayError(Exception):
    """A bag that cannot be replayed (missing, not a bag, bad arguments): the message says why."""


def message_class(msgtype: str):
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def is_command_topic(topic: str) -> bool:
    return any(topic.endswith('/' + name) for name in COMMAND_TOPICS)


def output_topic(topic: str, remaps: dict[str, str], prefix: str = '') -> str:
    """Where a recorded topic is published: its remap, else the topic under `prefix`."""
    if topic in remaps:
        return remaps[topic]
    return '/' + '/'.join(part for part in (prefix.strip('/'), topic.strip('/')) if part)


def parse_remaps(pairs: list[str] | dict[str, str] | None) -> dict[str, str]:
    if isinstance(pairs, dict) or pairs is None:
        return dict(pairs or {})
    remaps = {}
    for pair in pairs:
        src, sep, dst = pair.partition(':=')
        if not sep or not src.startswith('/') or not dst.startswith('/'):
            raise ReplayError(f'remap {pair!r}: write /recorded/topic:=/new/topic (absolute names)')
        remaps[src] = dst
    return remaps


def check_bag(bag: str | Path) -> Path:
    path = Path(bag)
    if not path.exists():
        raise ReplayError(f'no such bag: {path}')
    if path.is_dir() and not (path / 'metadata.yaml').exists():
        raise ReplayError(f'{path} is not a rosbag2 folder (no metadata.yaml)')
    return path


def replay(bag: str | Path, rate: float = 1.0, topics: list[str] | None = None, node=None,
           wait_subscribers_s: float = 2.0, publish_commands: bool = False, clock: bool = False,
           remaps: list[str] | dict[str, str] | None = None, prefix: str = '') -> dict:
    """Publish the bag's messages; returns the count per recorded topic (skipped commands are not counted)."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    path = check_bag(bag)
    remap = parse_remaps(remaps)
    if rate < 0:
        raise ReplayError(f'rate {rate} is negative')
    try:
        reader = Reader(path)
        reader.open()
    except ReaderError as exc:
        raise ReplayError(f'{path} cannot be read as a bag: {exc}') from None
    own = node is None
    if own:
        rclpy.init()
        node = rclpy.create_node('enpire_replay')
    counts: dict[str, int] = {}
    try:
        conns = [c for c in reader.connections if (topics is None or c.topic in topics)
                 and (publish_commands or not is_command_topic(c.topic))]
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {c.id: node.create_publisher(message_class(c.msgtype), output_topic(c.topic, remap, prefix),
                                            qos) for c in conns}
        clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock
            clock_pub = node.create_publisher(Clock, '/clock', 10)
        deadline = time.monotonic() + wait_subscribers_s   # for every reader present to match (volatile QoS)
        waiting = [*pubs.values(), *([clock_pub] if clock_pub else [])]
        while time.monotonic() < deadline and not all(p.get_subscription_count() for p in waiting):
            time.sleep(0.05)
        t_wall0 = time.monotonic()
        t_bag0 = None
        for conn, stamp, raw in reader.messages(connections=conns):
            if t_bag0 is None:
                t_bag0 = stamp
            if rate > 0:
                delay = (stamp - t_bag0) * 1e-9 / rate - (time.monotonic() - t_wall0)
                if delay > 0:
                    time.sleep(delay)
            if clock_pub is not None:
                clock_pub.publish(_clock(stamp))
            pubs[conn.id].publish(bytes(raw))
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
        for pub in pubs.values():
            pub.wait_for_all_acked(rclpy.duration.Duration(seconds=5))
    finally:
        reader.close()
        if own:
            node.destroy_node()
            rclpy.shutdown()
    return counts


def _clock(stamp_ns: int):
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    return Clock(clock=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9))
