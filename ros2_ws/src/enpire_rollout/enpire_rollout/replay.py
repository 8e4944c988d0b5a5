"""`enpire replay BAG --rate X`: republish a trial bag on the graph (rclpy publishes the recorded CDR bytes).

The bag's absolute topic names are kept (`/cell_0/cell_state`, ...); `rate` scales the recorded timing
(0: as fast as possible). Every publisher waits for its subscribers' acknowledgements before exit.
"""
from __future__ import annotations

import importlib
import time
from pathlib import Path

from rosbags.rosbag2 import Reader


def message_class(msgtype: str):
    package, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def replay(bag: str | Path, rate: float = 1.0, topics: list[str] | None = None, node=None,
           wait_subscribers_s: float = 2.0) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    own = node is None
    if own:
        rclpy.init()
        node = rclpy.create_node('enpire_replay')
    counts: dict[str, int] = {}
    try:
        with Reader(bag) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
            pubs = {c.id: node.create_publisher(message_class(c.msgtype), c.topic, qos) for c in conns}
            deadline = time.monotonic() + wait_subscribers_s
            while time.monotonic() < deadline and not any(p.get_subscription_count() for p in pubs.values()):
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
                pubs[conn.id].publish(bytes(raw))
                counts[conn.topic] = counts.get(conn.topic, 0) + 1
            for pub in pubs.values():
                pub.wait_for_all_acked(rclpy.duration.Duration(seconds=5))
    finally:
        if own:
            node.destroy_node()
            rclpy.shutdown()
    return counts
