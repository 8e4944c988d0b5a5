"""Recorder: a cell's topics as raw CDR into one rosbag2 folder per trial, as rosbag2's recorder does.

python -m enpire_rollout.recorder_node --ros-args -r __ns:=/cell_0 --params-file config/recorder.yaml

The trial server opens, splits and closes bags with `recorder/start`, `recorder/split` and `recorder/stop`
(enpire_interfaces StartRecording, SplitRecording, StopRecording); every bag closed is announced on
`recorder/closed` (BagClosed), as rosbag2's recorder announces its splits. The trial server publishes what
it decides (commands, trial events, verdicts) and the recorder records them like every other topic.
Services answer without waiting for messages (a stop's wait for the trial's last ones happens on the
writer thread), so the recorder composes into a cell's one-thread executor. Callbacks only enqueue the
bytes with the node clock's time of receipt (the log time: sim time on a simulated cell); the writing
(camera rate, compression, MCAP zstd chunks, flushing) runs on one writer thread (recording.py).
Cameras are taken with the sensor-data QoS profile, as the cell offers them. The streams (cameras, the cell's
state and truth) are subscribed only while a bag is open: a start subscribes them and waits until they
match the cell's publishers before it answers, so the bag holds everything published after the start.
"""
from __future__ import annotations

import json
import threading
import time
from functools import partial

from enpire_common import names
from enpire_common.executors import WaitingCallbackGroup, lean_subscription_events
from enpire_common.node_main import run_node
from enpire_common.node_parameters import declare_parameters
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from enpire_interfaces.msg import (
    BagClosed,
    CellState,
    Command,
    FusedVerdict,
    GroundTruth,
    SafetyEvent,
    TableHomography,
    TrialEvent,
)
from enpire_interfaces.srv import SplitRecording, StartRecording, StopRecording
from enpire_rollout.recording import BagRecorder, ClosedBag, Mark, RecorderConfig

LATCHED = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
KEEP = 1000
NO_CLOCK = "the cell's clock (not heard yet)"
BAG_TIME_TOPICS = (names.CELL_STATE, names.GROUND_TRUTH)    # with the cameras: subscribed while a bag is open
CLOSED_QOS = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)   # a late subscriber sees it


def recorded_topics(cameras: list[str]) -> list[tuple[str, type, QoSProfile | int]]:
    """(relative topic, message type, subscription QoS) of everything the recorder takes."""
    # Reliable topics keep up to KEEP messages in the reader while the recorder is busy: a lockstep cell
    # steps faster than a loaded machine schedules the recorder, and every state and command must arrive.
    topics = [(names.CELL_STATE, CellState, KEEP), (names.POLICY_COMMAND, Command, KEEP),
              (names.CELL_COMMAND, Command, KEEP), (names.SAFETY_EVENTS, SafetyEvent, KEEP),
              (names.TRIAL_EVENTS, TrialEvent, KEEP), (names.TRIAL_VERDICTS, FusedVerdict, KEEP),
              (names.GROUND_TRUTH, GroundTruth, KEEP), (names.TF_STATIC, TFMessage, LATCHED)]
    for cam in cameras:
        topics += [(names.camera_image(cam), Image, qos_profile_sensor_data),
                   (names.camera_info(cam), CameraInfo, qos_profile_sensor_data),
                   (names.camera_homography(cam), TableHomography, qos_profile_sensor_data)]
    return topics


class Recorder(Node):
    def __init__(self, **node_options):
        super().__init__('recorder', **node_options)
        self.config = declare_parameters(self, RecorderConfig)
        self.cell = self.get_namespace().strip('/') or 'cell'
        self.closed_pub = self.create_publisher(BagClosed, names.RECORDER_CLOSED, CLOSED_QOS)
        self.core = BagRecorder(self.cell, self.config, log=self.get_logger().warning,
                                on_closed=self._publish_closed)
        self._now = self.get_clock().now       # a message's log time: its receipt on the cell's clock
        # The streams (cameras ~90 msg/s, the cell's state and truth 10 each) are subscribed only while a
        # bag is open: an idle cell's recorder takes nothing, and its cell renders no frame for it. A start
        # comes before the trial's reset, so the trial's messages all arrive. The rest (commands, events,
        # verdicts, /tf_static) is quiet while no trial runs and stays subscribed.
        topics = recorded_topics(self.config.cameras)
        cameras = topics[len(recorded_topics([])):]
        self._stream_topics = [t for t in topics if t[0] in BAG_TIME_TOPICS] + cameras
        self._stream_subs: list = []
        for topic in topics:
            if topic not in self._stream_topics:
                self._subscribe(*topic)
        self._unsubscribe_streams = self.create_guard_condition(self._drop_streams_if_idle)
        self._streams_lock = threading.Lock()
        self._heard: set[str] = set()      # stream topics heard from since they were subscribed
        self._arrived = threading.Event()  # a stream's first message since then (a start waits for them)
        # The trial server re-sends a start until it is answered; a copy (the same request: its metadata
        # carries the time it was made) gets the first one's answer, never opening a second bag, nor a bag
        # after the trial server was told no and moved on.
        self._starts_answered: dict[tuple[str, str, str], tuple[bool, str, str]] = {}
        self.create_service(StartRecording, names.RECORDER_START, self._on_start,
                            callback_group=WaitingCallbackGroup())
        self.create_service(SplitRecording, names.RECORDER_SPLIT, self._on_split)
        self.create_service(StopRecording, names.RECORDER_STOP, self._on_stop)
        self.get_logger().info(f'recorder for {self.cell}: cameras={self.config.cameras} every '
                               f'{self.config.record_camera_period_s} s, zstd chunks')

    def _subscribe(self, topic, msg_type, qos):
        return self.create_subscription(msg_type, topic, partial(self._on_message, topic), qos, raw=True,
                                        event_callbacks=lean_subscription_events())

    def _drop_streams_if_idle(self) -> None:
        """On the executor thread, after a bag closed: no bag open, no stream subscriptions (a start that is
        subscribing them keeps them)."""
        if not self._streams_lock.acquire(blocking=False):
            return
        try:
            if self.core.is_open() or not self._stream_subs:
                return
            for sub in self._stream_subs:
                self.destroy_subscription(sub)
            self._stream_subs = []
        finally:
            self._streams_lock.release()

    def _on_message(self, topic: str, data: bytes) -> None:
        t0 = time.thread_time()
        self.core.offer(topic, data, self._now().nanoseconds)
        if topic not in self._heard:
            self._heard.add(topic)
            self._arrived.set()
        self.core.callback_cpu_s += time.thread_time() - t0

    def _wait_ready_to_record(self, timeout_s: float) -> list[str]:
        """Subscribe the streams if need be and wait (wall s) until a bag can start; what is still missing
        (empty: ready). Ready is: the cell's clock heard (on sim time the node's clock reads 0 until its
        clock subscription hears the cell, and a bag opened then would be logged at time 0), the stream
        subscriptions matched to the cell's publishers, and a first message from each stream that has one
        (the reader matches at once, the publisher's side when its discovery gets round to it, and only
        then does the cell send; a lockstep cell re-sends its state and frames on a new match)."""
        if not self._stream_subs:
            self._heard = set()
            self._stream_subs = [self._subscribe(*t) for t in self._stream_topics]
        deadline = time.monotonic() + timeout_s
        while True:
            missing = []
            if self.get_clock().now().nanoseconds == 0:
                missing.append(NO_CLOCK)
            for sub, (topic, _type, _qos) in zip(self._stream_subs, self._stream_topics, strict=True):
                if not self.count_publishers(sub.topic_name):
                    continue             # nobody publishes it (a real cell has no truth): not waited for
                if not sub.get_publisher_count():
                    missing.append(f'{topic} (not matched)')
                elif topic not in self._heard:
                    missing.append(f'{topic} (no message)')
            if not missing or time.monotonic() >= deadline:
                return missing
            self._arrived.wait(0.05)     # a stream's message wakes it; the clock and matching are polled
            self._arrived.clear()

    def _on_start(self, request, response):
        """Open a trial's bag (off a composed cell's spin thread: it waits for the cell's messages). Without
        the cell's clock it refuses; a stream still silent is only warned about (its first messages may be
        missing from the bag; the stop's marks say whether its last ones made it)."""
        key = (request.trial_id, request.bag_dir, request.metadata_json)
        with self._streams_lock:
            if key in self._starts_answered:    # a copy (re-sent, service_call): the first one's answer
                response.ok, response.bag_path, response.error = self._starts_answered[key]
                return response
            try:
                wait_s = self.config.start_wait_wall_s      # discovery, not cell time: wall s
                missing = self._wait_ready_to_record(wait_s)
                if NO_CLOCK in missing:
                    raise RuntimeError(f'not ready to record after {wait_s} s (wall), still '
                                       f'missing: {", ".join(missing)}')
                if missing:
                    self.get_logger().warning(f'bag start after {wait_s} s (wall) without '
                                              f'{", ".join(missing)}: the bag may miss their first messages')
                response.bag_path = self.core.start(request.trial_id, request.bag_dir,
                                                    _json(request.metadata_json, 'metadata_json'),
                                                    self.get_clock().now().nanoseconds).result(timeout=30.0)
                response.ok = True
            except Exception as exc:  # noqa: BLE001 - the caller gets the reason
                response.ok, response.error = False, f'{type(exc).__name__}: {exc}'
            self._starts_answered[key] = (response.ok, response.bag_path, response.error)
            while len(self._starts_answered) > 16:
                del self._starts_answered[next(iter(self._starts_answered))]
        return response

    def _on_split(self, request, response):
        """Close the open bag and open the next between two messages."""
        try:
            closed, response.bag_path = self.core.split(
                request.status, _json(request.summary_json, 'summary_json'), request.trial_id,
                request.bag_dir, _json(request.metadata_json, 'metadata_json'),
                self.get_clock().now().nanoseconds).result(timeout=30.0)
            response.ok, response.closed_bag_path = True, closed.bag_path
        except Exception as exc:  # noqa: BLE001
            response.ok, response.error = False, f'{type(exc).__name__}: {exc}'
        return response

    def _on_stop(self, request, response):
        """Close the open bag once it holds what the marks name; announced on recorder/closed."""
        marks = [Mark(m.topic, m.stamp.sec * 1_000_000_000 + m.stamp.nanosec, m.count) for m in request.marks]
        try:
            response.bag_path, closing = self.core.stop(request.status,
                                                        _json(request.summary_json, 'summary_json'), marks)
            # Once the bag closed (writer thread), the executor drops the stream subscriptions.
            closing.add_done_callback(lambda _closed: self._unsubscribe_streams.trigger())
            response.ok = True
        except Exception as exc:  # noqa: BLE001
            response.ok, response.error = False, f'{type(exc).__name__}: {exc}'
        return response

    def _publish_closed(self, closed: ClosedBag) -> None:
        msg = BagClosed(trial_id=closed.trial_id, bag_path=closed.bag_path, status=closed.status,
                        messages=closed.messages, recorder_cpu_s=float(closed.cpu_s), missing=closed.missing)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.closed_pub.publish(msg)

    def destroy_node(self):
        self.core.shutdown()      # an open bag is closed as aborted, never left unfinished
        return super().destroy_node()


def _json(text: str, what: str) -> dict:
    try:
        value = json.loads(text or '{}')
    except ValueError as exc:
        raise ValueError(f'{what} is not JSON: {exc}') from None
    if not isinstance(value, dict):
        raise ValueError(f'{what} must be a JSON object')
    return value


def main(args=None) -> int:
    return run_node(Recorder, args=args)


if __name__ == '__main__':
    raise SystemExit(main())


__all__ = ['Recorder', 'recorded_topics', 'main']
