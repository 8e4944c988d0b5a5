"""A tree of static transforms, as /tf_static carries them, and lookups through it. Pure.

A lab's tree is often longer than table -> camera: table -> base_link -> camera_link ->
camera_color_optical_frame, the last hops published by the camera driver. `lookup` composes along the
tree like tf2's `lookupTransform` does for static frames (no time: static transforms hold forever).
"""
from __future__ import annotations

import threading

from enpire_env.calibration.camera_model import Pose


def fill_transform(msg, parent: str, child: str, pose: Pose, stamp=None):
    """Write parent_from_child into a geometry_msgs/TransformStamped (any object with its fields)."""
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = parent, child
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in pose.translation)
    q.x, q.y, q.z, q.w = (float(v) for v in pose.quaternion())
    return msg


class TransformError(LookupError):
    """No chain of transforms connects the two frames (or a frame has two parents)."""


class StaticTransforms:
    """child frame -> (parent frame, parent_from_child); thread-safe, the newest edge wins."""

    def __init__(self):
        self._edges: dict[str, tuple[str, Pose]] = {}
        self._lock = threading.Lock()

    def set(self, parent: str, child: str, pose: Pose) -> None:
        parent, child = parent.lstrip('/'), child.lstrip('/')
        if parent == child:
            raise TransformError(f'a frame cannot be its own parent: {child!r}')
        with self._lock:
            self._edges[child] = (parent, pose)

    def add_message(self, msg) -> int:
        """Every transform of a tf2_msgs/TFMessage (any object with its fields); returns how many."""
        for tf in msg.transforms:
            t, q = tf.transform.translation, tf.transform.rotation
            self.set(tf.header.frame_id, tf.child_frame_id,
                     Pose.from_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w)))
        return len(msg.transforms)

    def frames(self) -> set[str]:
        with self._lock:
            return set(self._edges) | {parent for parent, _ in self._edges.values()}

    def _root_from(self, frame: str) -> tuple[str, Pose]:
        pose, seen = Pose.identity(), {frame}
        with self._lock:
            while frame in self._edges:
                parent, parent_from_frame = self._edges[frame]
                if parent in seen:
                    raise TransformError(f'the transforms form a loop through {parent!r}')
                seen.add(parent)
                pose, frame = parent_from_frame @ pose, parent
        return frame, pose

    def lookup(self, target: str, source: str) -> Pose:
        """target_from_source (what tf2's lookup_transform(target, source) returns)."""
        target, source = target.lstrip('/'), source.lstrip('/')
        known = self.frames()
        for frame in (target, source):
            if frame not in known:
                raise TransformError(f'frame {frame!r} is not in the static transforms '
                                     f'(known: {sorted(known) or "none"})')
        target_root, root_from_target = self._root_from(target)
        source_root, root_from_source = self._root_from(source)
        if target_root != source_root:
            raise TransformError(f'{target!r} and {source!r} are not connected '
                                 f'(trees rooted at {target_root!r} and {source_root!r})')
        return root_from_target.inverse() @ root_from_source
