"""What an agent takes from a recorded trial's bag: key frames of failed rollouts, as PNG (no rclpy).

    last_frame_png(bag_path, camera='top')    # the last frame of that camera in the bag, or None
    key_frames(rollouts, limit=4)             # the last top frame of each failed rollout that has a bag

Bags are the trial server's (`enpire_rollout.trial_bag.TrialBag`), read with rosbags' Reader and the
project's typestore, as `enpire audit` reads them; raw and compressed images are both understood.
A missing or unreadable bag gives no frame, never an error: a key frame is a hint, not a result.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from enpire_common import names

from enpire_rollout.trial_outcome import TrialOutcome

KEY_CAMERA = 'top'
MAX_KEY_FRAMES = 4


def last_frame_png(bag_path: str | Path, camera: str = KEY_CAMERA) -> bytes | None:
    """The camera's last recorded frame as PNG bytes; None when the bag or the camera's frames are absent."""
    bag = Path(bag_path)
    if not (bag / 'metadata.yaml').is_file():
        return None
    try:
        return _last_frame_png(str(bag.resolve()), camera)
    except Exception:  # noqa: BLE001 - a damaged bag (a trial cut short) just has no key frame
        return None


@lru_cache(maxsize=64)   # the same best node's bags are asked for round after round
def _last_frame_png(bag: str, camera: str) -> bytes | None:
    from rosbags.rosbag2 import Reader

    from enpire_rollout.trial_bag import typestore

    raw_suffix = '/' + names.camera_image(camera)
    with Reader(bag) as reader:
        connections = [c for c in reader.connections
                       if c.topic.endswith(raw_suffix) or c.topic.endswith(raw_suffix + '/compressed')]
        last = None
        for connection, _stamp, data in reader.messages(connections=connections):
            last = connection, data
    if last is None:
        return None
    connection, data = last
    return _to_png(typestore().deserialize_cdr(data, connection.msgtype), connection.msgtype)


def _to_png(msg, msgtype: str) -> bytes | None:
    import cv2
    import numpy as np

    from enpire_rollout.trial_core import image_to_array

    if msgtype == 'sensor_msgs/msg/CompressedImage':
        encoded = bytes(msg.data)
        if 'png' in msg.format.lower():
            return encoded
        bgr = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8), cv2.IMREAD_COLOR)
    else:
        rgb = image_to_array(msg.height, msg.width, msg.encoding, msg.data)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if bgr is None:
        return None
    ok, png = cv2.imencode('.png', bgr)
    return png.tobytes() if ok else None


def key_frames(rollouts: Sequence[TrialOutcome], camera: str = KEY_CAMERA,
               limit: int = MAX_KEY_FRAMES) -> list[bytes]:
    """The last `camera` frame of each failed rollout that was recorded, in rollout order, at most `limit`."""
    frames: list[bytes] = []
    for rollout in rollouts:
        if len(frames) >= limit:
            break
        if rollout.bag_path and rollout.first_success is None:
            png = last_frame_png(rollout.bag_path, camera)
            if png is not None:
                frames.append(png)
    return frames


def trial_evidence(bag_path: str | Path, max_events: int = 50) -> tuple[dict[str, bytes], list[dict]]:
    """For an agent's `get_trial`: the last frame of every camera (PNG) and the safety events of the trial.

    One pass over the bag; a missing or damaged bag gives what could be read (possibly nothing)."""
    from rosbags.rosbag2 import Reader

    from enpire_rollout.trial_bag import typestore

    bag = Path(bag_path)
    last: dict[str, tuple[object, bytes]] = {}
    events: list[dict] = []
    if not (bag / 'metadata.yaml').is_file():
        return {}, []
    try:
        with Reader(bag) as reader:
            for connection, stamp, data in reader.messages():
                if connection.msgtype in ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage'):
                    topic = connection.topic.removesuffix('/compressed').removesuffix('/image_raw')
                    camera = topic.rsplit('/', 1)[-1]
                    last[camera] = (connection, data)
                elif connection.topic.endswith('/' + names.SAFETY_EVENTS) and len(events) < max_events:
                    msg = typestore().deserialize_cdr(data, connection.msgtype)
                    events.append({'t_ns': stamp, 'kind': int(msg.kind), 'reason': msg.reason})
    except Exception:  # noqa: BLE001 - a trial cut short keeps what was flushed; the rest is no evidence
        pass
    frames = {}
    for camera, (connection, data) in sorted(last.items()):
        png = _to_png(typestore().deserialize_cdr(data, connection.msgtype), connection.msgtype)
        if png is not None:
            frames[camera] = png
    return frames, events
