"""Trial server: the `run_trial` action of one cell (reset -> k in-context attempts -> verify), recorded.

python -m enpire_rollout.trial_server_node --ros-args -r __ns:=/cell_0 --params-file config/trial_server.yaml

The policy runs in a sandbox process (sandbox.py); its commands go to the safety node on
`cmd/policy_target`; the verify service is the only judge of success. The cell's recorder (recorder_node.py)
writes one rosbag per trial: this node opens and closes it (recorder/start, recorder/stop) and publishes
what it decides (commands, trial events, verdicts on `trial/verdicts`), which the recorder records. A goal
with record=true is refused when the cell has no recorder, and a trial whose recorder leaves mid-trial is
aborted with the reason (its bag is salvaged as aborted when a recorder starts again).
Waits, the reset and verify timeouts and the trial's time budget count the node's clock (the cell's sim
time under use_sim_time; `enpire_common.cell_clock`): a wait whose cell clock stood still for
`clock_stall_timeout_s` wall seconds ends the trial with that reason. The policy's act() deadlines are
wall time (its compute time), and so are the frames' delivery allowance, the recorder's answers
(`recorder_timeout_wall_s`) and the phase timings.
The cell's state, truth and cameras are subscribed from a trial's start (matched before its reset) until
`STREAMS_LINGER_WALL_S` after its end: an idle cell streams nothing to this node, and a simulated cell
renders no frame for it.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from enpire_common import messages, names, task_registry
from enpire_common.action_client import ActionClient
from enpire_common.cell_clock import CellClock, WaitResult
from enpire_common.executors import SubmitOnceExecutor, lean_publisher_events, lean_subscription_events
from enpire_common.node_main import run_node
from enpire_common.node_parameters import declare_parameters
from enpire_common.on_demand import OnDemandSubscriptions, wait_matched
from enpire_common.service_call import call_resending
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from enpire_env.calibration.table_mapping import CalibratedCameras
from enpire_interfaces.action import ResetCell, RunTrial
from enpire_interfaces.msg import (
    BagClosed,
    CellState,
    Command,
    FusedVerdict,
    GroundTruth,
    RecordingMark,
    TableHomography,
    TrialEvent,
)
from enpire_interfaces.srv import StartRecording, StopRecording, Verify
from enpire_rollout import os_sandbox
from enpire_rollout.policy_contract import Observation
from enpire_rollout.policy_runtime import trial_context
from enpire_rollout.sandbox import PolicyRunner, SandboxLimits
from enpire_rollout.scrub import scrub, scrub_value
from enpire_rollout.state_reading import StateReading
from enpire_rollout.trial_bag import recover_unfinished
from enpire_rollout.trial_core import (
    RUNTIME_PARAMETERS,
    TRIAL_ID,
    PhaseClock,
    RawFrame,
    TrialServerConfig,
    header_stamp_ns,
    image_to_array,
    new_trial_id,
    policy_dirs,
    validate_goal,
)
from enpire_rollout.trial_diagnostics import TrialDiagnostics
from enpire_rollout.trial_loop import TrialAborted, TrialPlan, Verdict, run_trial
from enpire_rollout.trial_outcome import TrialOutcome

# Wall seconds: a trial waits this long at most for its state and camera subscriptions to match the cell's
# publishers (discovery, not cell time); they stay subscribed this long after a trial (for the next one).
STREAMS_MATCH_WALL_S = 5.0
STREAMS_LINGER_WALL_S = 10.0
ORPHAN_CHECK_WALL_S = 65.0       # a goal waits this long at most for the start-up's orphan-bag check
COMMAND_PATH_WALL_S = 30.0       # an attempt waits this long at most for its commands' path to safety


def _stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _time(stamp_ns: int) -> Time:
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


@functools.cache
def _versions() -> dict[str, str]:
    """Versions recorded in every bag; looked up once per process (a metadata scan per trial otherwise)."""
    from importlib.metadata import version
    versions = {}
    for dist in ('rosbags', 'numpy', 'ros-rclpy'):
        try:
            versions[dist] = version(dist)
        except Exception:  # noqa: BLE001
            versions[dist] = 'unknown'
    return versions


class TrialServer(Node):
    def __init__(self, **node_options):
        super().__init__('trial_server', **node_options)
        self.config = declare_parameters(self, TrialServerConfig, RUNTIME_PARAMETERS,
                                         on_change=self._set_config)
        self.sandbox = os_sandbox.probe()
        self.used_trial_ids: set[str] = set()
        self.cell = self.get_namespace().strip('/') or 'cell'
        self.group = ReentrantCallbackGroup()
        self._lock = threading.Lock()
        self._state_cv = threading.Condition(self._lock)
        self.state: CellState | None = None
        self.frames: dict[str, RawFrame] = {}          # latest raw CDR per camera
        self.homographies: dict[str, RawFrame] = {}
        self.static_transforms: list[bytes] = []      # /tf_static messages of the cell (latched)
        self.camera_infos: dict[str, bytes] = {}      # camera -> its latest CameraInfo
        self.calibrated = CalibratedCameras(self.config.table_pixel_m)   # maps frames without a homography
        # Safety answers every policy command with exactly one safe command: counted, so a trial's end
        # can wait for the answer to its last one (the hold) before the bag closes.
        self.policy_commands_sent = 0
        self.safe_commands_taken = 0
        self.last_safe_stamp_ns = 0
        # What this node published (the recorder's stop waits until the bag holds as many).
        self.published = {names.TRIAL_EVENTS: 0, names.TRIAL_VERDICTS: 0, names.POLICY_COMMAND: 0}
        self.placement_truth: RawFrame | None = None    # ground truth of the cell's last placement (step 0)
        self.truth: GroundTruth | None = None
        self.closed_bags: dict[str, BagClosed] = {}     # bag path -> the recorder's announcement
        self._closed_cv = threading.Condition()
        self._busy = threading.Lock()
        self._checking_orphan = False
        self.clock = PhaseClock()

        lean_pub = {'event_callbacks': lean_publisher_events()}
        self.command_pub = self.create_publisher(Command, names.POLICY_COMMAND, 10, **lean_pub)
        self.event_pub = self.create_publisher(TrialEvent, names.TRIAL_EVENTS, 100, **lean_pub)
        self.verdict_pub = self.create_publisher(FusedVerdict, names.TRIAL_VERDICTS, 100, **lean_pub)
        self.diagnostics = TrialDiagnostics(self)     # its trials on /diagnostics
        # The cell's state (10 Hz) is subscribed while trials run, with the cameras (`open_streams`).
        self._state_sub = None
        # Frames, the safe command and safety events are taken when a trial needs them (on_demand.py),
        # not delivered one callback each: an idle cell's camera streams then cost this node nothing.
        self.sensors = OnDemandSubscriptions(self)
        self.sensors.add(names.CELL_COMMAND, Command, names.CELL_COMMAND, 20, raw=True)
        # A simulated cell's truth: whether the placement after the reset was published (for the bag).
        self.sensors.add(names.GROUND_TRUTH, GroundTruth, names.GROUND_TRUTH, 10, raw=True, lazy=True)
        # The cameras' calibration maps the frames of a real cell (which publishes no homography).
        self.sensors.add(names.TF_STATIC, TFMessage, names.TF_STATIC,
                         QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL), raw=True)
        # The cameras only while trials run (lazy, `open_streams`): a simulated cell renders no frame nobody
        # subscribes to.
        camera_qos = {'qos': qos_profile_sensor_data, 'raw': True, 'lazy': True}
        for cam in self.config.cameras:
            self.sensors.add(names.camera_image(cam), Image, names.camera_image(cam), **camera_qos)
            self.sensors.add(names.camera_info(cam), CameraInfo, names.camera_info(cam), **camera_qos)
            self.sensors.add(names.camera_homography(cam), TableHomography, names.camera_homography(cam),
                             **camera_qos)
        g = self.group
        if self.config.debug_ground_truth:
            self.create_subscription(GroundTruth, names.GROUND_TRUTH, self._on_truth, 10, callback_group=g)
        self.reset_client = ActionClient(self, ResetCell, names.RESET, callback_group=g)
        self.verify_client = self.create_client(Verify, names.VERIFY, callback_group=g)
        self.recorder_start = self.create_client(StartRecording, names.RECORDER_START, callback_group=g)
        self.recorder_stop = self.create_client(StopRecording, names.RECORDER_STOP, callback_group=g)
        self.create_subscription(BagClosed, names.RECORDER_CLOSED, self._on_bag_closed,
                                 QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL),
                                 callback_group=g)
        self._server = ActionServer(self, RunTrial, names.RUN_TRIAL, execute_callback=self.execute_callback,
                                    goal_callback=self.goal_callback, cancel_callback=self.cancel_callback,
                                    callback_group=g)
        for rec in recover_unfinished(self.config.bag_dir):     # a recorder that died (a crashed cell)
            self.get_logger().warning(
                f"unfinished trial {rec['trial_id']} recorded as aborted: {rec['bag_path']}")
        # A bag the recorder still holds open is a trial of this server's previous life: closed as aborted.
        threading.Thread(target=self._abort_orphan_bag, daemon=True).start()
        self.get_logger().info(f'trial server for {self.cell}: cameras={self.config.cameras} '
                               f'bags in {self.config.bag_dir}')
        if self.sandbox.available:
            self.get_logger().info(f'policy sandbox: OS boundary (bubblewrap, {self.sandbox.mode})')
        elif self.config.accept_weaker_sandbox:
            self.get_logger().warning(f'NO OS SANDBOX ({self.sandbox.detail}): agent code runs behind the '
                                      'Python guard only (accept_weaker_sandbox)')
        else:
            self.get_logger().error(f'no OS sandbox ({self.sandbox.detail}): every trial is refused; install '
                                    'bubblewrap, allow user namespaces, or set accept_weaker_sandbox:=true')

    def _set_config(self, config: TrialServerConfig) -> None:
        self.config = config        # taken by the next trial

    @property
    def cell_clock(self) -> CellClock:
        """The node's clock (the cell's sim time under use_sim_time) with the stall backstop."""
        return CellClock.of_node(self, stall_timeout_s=self.config.clock_stall_timeout_s)

    @staticmethod
    def _unless_stalled(result: WaitResult) -> bool:
        """A wait's outcome: True when met, False on a cell-time timeout; a stalled clock ends the trial."""
        if result.stalled:
            raise TrialAborted(f'cell not responding: {result.reason}')
        return bool(result)

    def _abort_orphan_bag(self) -> None:
        # Holding the trial lock: a bag open now cannot be one of this server's own trials.
        if not self.recorder_stop.wait_for_service(timeout_sec=60.0):
            return
        self._checking_orphan = True
        if not self._busy.acquire(blocking=False):
            self._checking_orphan = False
            return
        try:
            request = StopRecording.Request(status='aborted', summary_json=json.dumps({
                'reason': 'the trial server restarted mid-trial', 'failure_reason': 'restarted'}))
            future = self.recorder_stop.call_async(request)
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            if done.wait(30.0) and future.result() is not None and future.result().ok:
                self.wait_bag_closed(future.result().bag_path, 30.0)
                self.get_logger().warning(f'a trial of before the restart recorded as aborted: '
                                          f'{future.result().bag_path}')
        finally:
            self._checking_orphan = False
            self._busy.release()

    # ---------------------------------------------------------------- sensors
    # Frames arrive as raw CDR and are deserialised only when an observation needs them.
    def _on_state(self, data: bytes) -> None:
        msg = deserialize_message(data, CellState)
        with self._state_cv:
            self.state = msg
            self._state_cv.notify_all()

    def drain(self) -> None:
        """Take what arrived since the last call: the latest frame per camera for the policy, safety's
        answers (counted), the latest placement's truth."""
        self.take_calibration()
        for data in self.sensors.take(names.CELL_COMMAND):
            self.safe_commands_taken += 1
            self.last_safe_stamp_ns = max(self.last_safe_stamp_ns, header_stamp_ns(data))
        for data in self.sensors.take(names.GROUND_TRUTH):
            if deserialize_message(data, GroundTruth).step == 0:
                self.placement_truth = RawFrame(header_stamp_ns(data), data)
        for cam in self.config.cameras:
            images = [RawFrame(header_stamp_ns(d), d) for d in self.sensors.take(names.camera_image(cam))]
            homs = [RawFrame(header_stamp_ns(d), d) for d in self.sensors.take(names.camera_homography(cam))]
            with self._lock:
                if images:
                    self.frames[cam] = images[-1]
                if homs:
                    self.homographies[cam] = homs[-1]

    def take_calibration(self) -> None:
        """The cell's /tf_static and each camera's latest CameraInfo: to map the frames of a cell that
        publishes no homography (a real cell) for the policy."""
        for data in self.sensors.take(names.TF_STATIC):
            data = bytes(data)
            if data not in self.static_transforms:
                self.static_transforms = (self.static_transforms + [data])[-16:]
                self.calibrated.add_transforms(deserialize_message(data, TFMessage))
        for cam in self.config.cameras:
            infos = self.sensors.take(names.camera_info(cam))
            if infos and bytes(infos[-1]) != self.camera_infos.get(cam):
                self.camera_infos[cam] = bytes(infos[-1])
                try:
                    self.calibrated.set_camera_info(cam, deserialize_message(infos[-1], CameraInfo))
                except ValueError:   # a CameraInfo without intrinsics maps nothing
                    pass

    def _on_truth(self, msg: GroundTruth) -> None:
        with self._state_cv:
            self.truth = msg
            self._state_cv.notify_all()

    def truth_of(self, stamp_ns: int, timeout_s: float) -> GroundTruth | None:
        """Debug mode: the ground truth of the state stamped `stamp_ns` (published with it), waited for
        `timeout_s` wall s (delivery); None when it did not come."""
        with self._state_cv:
            self._state_cv.wait_for(lambda: self.truth is not None
                                    and _stamp_ns(self.truth.header.stamp) >= stamp_ns, timeout_s)
            truth = self.truth
        return truth if truth is not None and _stamp_ns(truth.header.stamp) >= stamp_ns else None

    def _on_bag_closed(self, msg: BagClosed) -> None:
        with self._closed_cv:
            self.closed_bags[msg.bag_path] = msg
            self._closed_cv.notify_all()

    def wait_bag_closed(self, bag_path: str, timeout_s: float) -> BagClosed | None:
        """The recorder's announcement that `bag_path` is complete on disk (None: not within the wall-clock
        timeout)."""
        with self._closed_cv:
            self._closed_cv.wait_for(lambda: bag_path in self.closed_bags, timeout_s)
            return self.closed_bags.pop(bag_path, None)

    def recorder_ready(self) -> bool:
        return self.recorder_start.service_is_ready() and self.recorder_stop.service_is_ready()

    def wait_recorder_ready(self, timeout_wall_s: float) -> bool:
        """Both recorder services on the graph within `timeout_wall_s` (a restarted recorder's come one by
        one, and a killed one's go when its lease runs out: one at a time, polled together)."""
        deadline = time.monotonic() + timeout_wall_s
        while not self.recorder_ready():
            if time.monotonic() >= deadline or not rclpy.ok(context=self.context):
                return False
            time.sleep(0.05)
        return True

    def cell_stamp(self):
        """Now on the cell's clock (the stamp of its latest state)."""
        state = self.state
        return state.header.stamp if state is not None else self.get_clock().now().to_msg()

    def initial_truth_published(self, since_ns: int, timeout: float) -> bool:
        """Whether a simulated cell published its exact state after the reset (its last placement, step 0,
        stamped at or after `since_ns`) on its privileged topic, which the recorder keeps for audits.
        False on a cell without ground truth (real)."""
        topic = self.resolve_topic_name(names.GROUND_TRUTH)

        def published():
            self.drain()
            truth = self.placement_truth
            return truth is not None and truth.stamp_ns >= since_ns
        self._unless_stalled(self.cell_clock.wait_until(
            lambda: published() or not self.count_publishers(topic), timeout, poll_s=0.01))
        return published()

    def wait_state_tracking(self, target: tuple[float, ...], timeout: float) -> CellState | None:
        """Wait for a cell state whose commanded vector is `target` (the command reached the cell):
        `timeout` wall s. Delivery, not cell time: a lockstep cell's clock stands still when no command
        follows (the safety filter may have changed the hold), so a cell-time bound would wait for the
        stall backstop instead."""
        deadline = time.monotonic() + timeout
        with self._state_cv:
            while not (self.state is not None and messages.vector(self.state.commanded) == tuple(target)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._state_cv.wait(min(remaining, 0.05))
            return self.state

    def wait_safe_commands(self, deficit: int, timeout: float) -> bool:
        """Wait until safety's answers to the policy commands sent so far are in the bag; `deficit`: the
        commands left unanswered before this trial (an answer lost then is not waited for again)."""
        def answered():
            self.drain()
            return self.safe_commands_taken + deficit >= self.policy_commands_sent
        return self._unless_stalled(self.cell_clock.wait_until(answered, timeout))

    # ---------------------------------------------------------------- action callbacks
    def goal_callback(self, goal_request) -> GoalResponse:
        """One trial at a time per cell; everything else is validated in execute with a clear reason."""
        # Read before the lock: a check that ends in between leaves the lock free, never a goal refused.
        checking = self._checking_orphan
        return GoalResponse.REJECT if self._busy.locked() and not checking else GoalResponse.ACCEPT

    def cancel_callback(self, goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def execute_callback(self, goal_handle) -> RunTrial.Result:
        # The start-up's check for an orphan bag holds the lock for one recorder call: a goal waits for it.
        if not (self._busy.acquire(timeout=ORPHAN_CHECK_WALL_S) if self._checking_orphan
                else self._busy.acquire(blocking=False)):
            goal_handle.abort()
            return RunTrial.Result(success=False,
                                   failure_reason='busy: another trial is running on this cell')
        try:
            return TrialRun(self, goal_handle).run()
        except Exception as exc:  # noqa: BLE001 - never a goal ended with no reason; the node lives on
            self.get_logger().error(f'trial failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}')
            with contextlib.suppress(Exception):     # the trial may have ended its goal before failing
                goal_handle.abort()
            return RunTrial.Result(success=False,
                                   failure_reason=scrub(f'internal error: {type(exc).__name__}: {exc}'))
        finally:
            self.clock.switch('idle')
            # Back-to-back trials keep the streams; an idle cell drops them.
            self.sensors.close_later(STREAMS_LINGER_WALL_S, then=self._drop_state_subscription)
            self._busy.release()

    def open_streams(self) -> None:
        """Subscribe the cell's state and cameras for a trial; wait (wall s) until they match the cell."""
        self.sensors.open(timeout_s=STREAMS_MATCH_WALL_S)
        if self._state_sub is None:
            self._state_sub = self.create_subscription(
                CellState, names.CELL_STATE, self._on_state, 10, callback_group=self.group,
                event_callbacks=lean_subscription_events(), raw=True)
            wait_matched(self, [self._state_sub], STREAMS_MATCH_WALL_S)

    def wait_command_path(self, timeout_s: float) -> bool:
        """Wait (wall s) until this node's policy commands reach the cell's safety node: the graph shows the
        node that publishes the cell's safe commands reading them, and the command publisher matched every
        reader the graph shows. A command sent before that match is lost (late discovery on a loaded
        machine), and a lockstep cell, which steps once per command, would stand still waiting for it."""
        deadline = time.monotonic() + timeout_s
        safe_topic = self.resolve_topic_name(names.CELL_COMMAND)
        while True:
            readers = self.get_subscriptions_info_by_topic(self.command_pub.topic_name)
            safety = {(i.node_namespace, i.node_name) for i in self.get_publishers_info_by_topic(safe_topic)}
            if (any((r.node_namespace, r.node_name) in safety for r in readers)
                    and self.command_pub.get_subscription_count() >= len(readers)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _drop_state_subscription(self) -> None:
        if self._state_sub is not None:
            self.destroy_subscription(self._state_sub)
            self._state_sub = None
        with self._state_cv:
            self.state = None       # the next trial waits for a fresh one

    # ---------------------------------------------------------------- helpers used by TrialRun
    def publish_event(self, trial_id: str, event: str, attempt: int = 0, score: float = 0.0,
                      **detail) -> None:
        msg = TrialEvent(trial_id=trial_id, event=event, attempt=attempt, score=float(score),
                         detail=json.dumps(scrub_value(detail), default=str))
        msg.header.stamp = self.cell_stamp()
        self.event_pub.publish(msg)
        self.published[names.TRIAL_EVENTS] += 1

    def publish_command(self, values, frame_id: str, stamp=None) -> None:
        """An action vector for the cell, stamped with the cell time of the state it answers (or latest)."""
        msg = messages.command(values, frame_id, stamp if stamp is not None else self.cell_stamp())
        self.command_pub.publish(msg)
        self.policy_commands_sent += 1
        self.published[names.POLICY_COMMAND] += 1

    def publish_verdict(self, verdict: FusedVerdict) -> None:
        """A trial's verdict, for the bag (the recorder keeps the frames it names with it)."""
        self.verdict_pub.publish(verdict)
        self.published[names.TRIAL_VERDICTS] += 1

    def wait_state_after(self, stamp_ns: int, timeout: float) -> CellState | None:
        with self._state_cv:
            met = self._unless_stalled(self.cell_clock.wait_until(
                lambda: self.state is not None and _stamp_ns(self.state.header.stamp) > stamp_ns,
                timeout, poll_s=0.05, sleep=self._state_cv.wait))
            return self.state if met else None

    def wait_frames(self, stamp_ns: int, timeout: float) -> None:
        """Give the step's camera frames (published right after its state) a moment to arrive: `timeout`
        wall s, their delivery (a lockstep cell's clock stands still while they travel)."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            with self._lock:
                if all(cam in self.frames and self.frames[cam].stamp_ns >= stamp_ns
                       for cam in self.config.cameras):
                    return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.0005)

    def observation(self, state: CellState, step: int, attempt: int, t0_ns: int, reading: StateReading,
                    scene: dict) -> Observation:
        now_ns = _stamp_ns(state.header.stamp)
        with self._lock:
            frames, homs = dict(self.frames), dict(self.homographies)
        images, mappings, ages = {}, {}, {}
        for cam, raw in frames.items():
            img = deserialize_message(raw.data, Image)
            try:
                image = image_to_array(img.height, img.width, img.encoding, img.data)
            except ValueError:
                continue
            hom = None
            if cam in homs:
                hom = np.asarray(deserialize_message(homs[cam].data, TableHomography).table_to_image,
                                 dtype=float).reshape(3, 3)
            images[cam], mapping = self.calibrated.map_frame(cam, image, hom)
            if mapping is not None:
                mappings[cam] = mapping
            ages[cam] = max(0.0, (now_ns - raw.stamp_ns) * 1e-9)
        truth = None
        t = self.truth_of(now_ns, self.config.step_timeout_s) if self.config.debug_ground_truth else None
        if t is not None:
            truth = {'task_state': messages.vector(t.task_state), 'tool': messages.vector(t.tool),
                     'score': float(t.score), 'success': bool(t.success)}
        return Observation(
            step=step, attempt=attempt, time_s=(now_ns - t0_ns) * 1e-9,
            agent_position=reading.position(state), agent_velocity=reading.velocity(state),
            proprioception=reading.proprioception(state), scene={k: v.copy() for k, v in scene.items()},
            frames=images, table_to_image=mappings, frame_age_s=ages, debug_ground_truth=truth)

    def call_verify(self, task: str, save_evidence: bool) -> FusedVerdict | None:
        if not self.verify_client.wait_for_service(timeout_sec=self.config.verify_timeout_s):
            return None
        future = self.verify_client.call_async(
            Verify.Request(task=task, cameras=[], save_evidence=save_evidence))
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not self._unless_stalled(self.cell_clock.wait_until(done.is_set, self.config.verify_timeout_s,
                                                               poll_s=0.05, sleep=done.wait)):
            future.cancel()
            return None
        response = future.result()
        if response is None or not response.ok:
            verdict = FusedVerdict(task=task, state=FusedVerdict.UNCERTAIN, success=False,
                                   reason=f'verify refused: {getattr(response, "error", "no response")}')
            return verdict
        return response.verdict


class TrialRun:
    """One goal of the run_trial action: validated, recorded, and run by the trial loop (`trial_loop`) with
    this cell behind its `TrialCell` methods (reset .. feedback)."""

    def __init__(self, server: TrialServer, goal_handle):
        self.s = server
        self.gh = goal_handle
        self.goal = goal_handle.request
        self.cfg = server.config
        self.trial_id = new_trial_id(server.cell)     # the goal's own, once validated
        self.t_start = 0.0                             # on the cell's clock, once it runs
        self.policy_source = ''
        self.hold_target: tuple[float, ...] | None = None
        self.hold_after_ns = 0
        self.action = None                             # the task's ActionSpec, once the goal is validated
        self.reading: StateReading | None = None       # how the task reads the cell's state
        self.scene: dict = {}                          # the scene as the verified reset located it
        self.distribution = ''                         # the goal's, or the task's first
        self.unanswered_before = 0
        self.state: CellState | None = None           # the state the current step answers
        self.attempt_t0_ns = 0
        self.timeouts = 0
        self.bag_path = ''                             # the bag the recorder writes ('' unrecorded)
        self.published_before: dict[str, int] = {}
        self.safe_before = 0
        self.recorder_checked = 0.0

    # ---------------------------------------------------------------- flow
    def _refusal(self) -> str:
        """Why this goal cannot run ('' when it can)."""
        used = set(self.s.used_trial_ids)
        trial_id = self.goal.trial_id
        if TRIAL_ID.fullmatch(trial_id or '-') and (Path(self.cfg.bag_dir) / trial_id).exists():
            used.add(trial_id)         # a bag of an earlier run of this server
        error = validate_goal(self.goal, self.cfg, used)
        if error:
            return f'invalid goal: {error}'
        # The content checked is the content run and recorded: the file is not read again.
        content = Path(self.goal.policy_path).read_bytes()
        if hashlib.sha256(content).hexdigest() != self.goal.policy_sha256.lower():
            return 'invalid goal: the policy file changed while it was being checked'
        self.policy_source = content.decode('utf-8', errors='replace')
        if not self.s.sandbox.available and not self.cfg.accept_weaker_sandbox:
            return (f'refused: no OS sandbox on this cell ({self.s.sandbox.detail}); agent code runs only '
                    'behind one unless the operator sets accept_weaker_sandbox')
        if self.goal.record and not self.s.wait_recorder_ready(self.cfg.recorder_timeout_wall_s):
            return ('refused: record=true but this cell has no recorder (recorder/start is not on the '
                    'graph); a trial never runs unrecorded')
        return ''

    def run(self) -> RunTrial.Result:
        g, cfg = self.goal, self.cfg
        try:
            error = self._refusal()
        except Exception as exc:  # noqa: BLE001 - a goal the checks cannot even read is refused too
            error = f'invalid goal: {type(exc).__name__}'
        if error:
            self.gh.abort()
            return RunTrial.Result(success=False, failure_reason=scrub(error))
        self.trial_id = g.trial_id or self.trial_id
        self.s.used_trial_ids.add(self.trial_id)
        self.s.open_streams()        # the state and the cameras, from before the reset on
        task = task_registry.get(g.task)
        try:
            self.action, self.reading = task.action, StateReading(task)
        except Exception as exc:  # noqa: BLE001 - a task whose settings do not load runs no trial
            self.gh.abort()
            return RunTrial.Result(success=False, failure_reason=scrub(
                f'refused: task {g.task!r} cannot be set up on this cell: {type(exc).__name__}: {exc}'))
        self.distribution = g.distribution or task.distributions[0]    # '': the task's in-distribution one
        if not self.s.sandbox.available:
            self.s.get_logger().warning(f'trial {self.trial_id}: NO OS SANDBOX, agent code behind the Python '
                                        f'guard only ({self.s.sandbox.detail})')
        # The cell's clock is the budget's and the bag's time base: have it, and a state (the cell
        # re-publishes both while idle).
        clock = self.s.cell_clock
        started = clock.wait_started()
        if not started:
            self.gh.abort()
            return RunTrial.Result(success=False, failure_reason=f'cell not responding: {started.reason}')
        self.t_start = clock.now_s()
        try:
            self.s.wait_state_after(-1, cfg.step_timeout_s)
        except TrialAborted:
            pass    # no state yet: the trial's first step says so
        self.s.drain()       # frames from before this trial update the latest, never reach its bag
        self.unanswered_before = max(0, self.s.policy_commands_sent - self.s.safe_commands_taken)
        outcome = TrialOutcome(seed=int(g.seed), task=g.task, attempts=g.attempts, cell=self.s.cell,
                               distribution=self.distribution)
        try:
            outcome.bag_path = self.bag_path = self._open_bag() if g.record else ''
        except TrialAborted as exc:
            outcome.failure_reason = scrub(str(exc))
            self.event('aborted', success=False, failure_reason=outcome.failure_reason)
            self.gh.abort()
            return RunTrial.Result(success=False, failure_reason=outcome.failure_reason)
        except Exception as exc:  # noqa: BLE001 - the node lives on; the trial ends with the reason
            self._crashed(exc)
            outcome.failure_reason = scrub(f'internal error: {type(exc).__name__}: {exc}')
            self.event('aborted', success=False, failure_reason=outcome.failure_reason)
            self.gh.abort()
            return RunTrial.Result(success=False, failure_reason=outcome.failure_reason)
        context = trial_context(g.task, attempts=g.attempts, steps_per_attempt=g.steps_per_attempt,
                                control_hz=cfg.control_hz, cameras=list(cfg.cameras), seed=int(g.seed))
        limits = SandboxLimits(step_deadline_s=cfg.step_deadline_s, hang_timeout_s=cfg.hang_timeout_s,
                               cpu_s=cfg.policy_cpu_s, memory_mb=cfg.policy_memory_mb,
                               os_sandbox=self.s.sandbox.available, data_dirs=policy_dirs(cfg))
        runner = PolicyRunner(limits)
        plan = TrialPlan(attempts=g.attempts, steps_per_attempt=g.steps_per_attempt,
                         time_budget_s=g.time_budget_s or cfg.max_time_budget_s,
                         verify_every_n_steps=cfg.verify_every_n_steps,
                         on_missed_deadline=None if self.reading.rule is None else self.reading.rule.stop)
        try:
            run_trial(self, runner, lambda: runner.start(g.policy_path, context, self.policy_source), plan,
                      outcome, goal=self._goal_dict(), started=self.t_start, clock=clock.now_s,
                      on_crash=self._crashed)
        finally:
            self.s.clock.switch('idle')
        result = RunTrial.Result(  # reasons scrubbed by the loop
            success=outcome.success, attempts_used=outcome.attempts_used,
            attempt_scores=outcome.attempt_scores, attempt_reasons=outcome.attempt_reasons,
            reset_s=outcome.reset_s, execute_s=round(outcome.execute_s, 4), verify_s=outcome.verify_s,
            failure_reason=outcome.failure_reason, bag_path=outcome.bag_path)
        # the trial's length on the cell's clock (sim time on a simulated cell), for a fleet's timing
        result.cell_time_s = max(0.0, clock.now_s() - self.t_start)
        status = ('cancelled' if result.failure_reason == 'cancelled' else
                  'failed' if result.failure_reason else 'finished')
        if self.bag_path:
            lost = self._close_bag(status, {k: getattr(result, k) for k in (
                'success', 'attempts_used', 'reset_s', 'execute_s', 'verify_s', 'failure_reason')} | {
                'attempt_scores': list(result.attempt_scores),
                'attempt_reasons': list(result.attempt_reasons)})
            if lost:     # the trial's evidence is incomplete: never reported as a success
                result.success = False
                result.failure_reason = scrub('; '.join(r for r in (result.failure_reason, lost) if r))
                status = 'failed'
        if status == 'cancelled':
            self.gh.canceled()
        elif result.failure_reason:
            self.gh.abort()
        else:
            self.gh.succeed()
        return result

    def _crashed(self, exc: Exception) -> None:
        self.s.get_logger().error(scrub(f'trial {self.trial_id} crashed: {exc!r}'))

    def _goal_dict(self) -> dict:
        g = self.goal
        return {'trial_id': self.trial_id, 'task': g.task, 'policy_path': g.policy_path,
                'policy_sha256': g.policy_sha256, 'seed': g.seed, 'distribution': g.distribution,
                'attempts': g.attempts, 'steps_per_attempt': g.steps_per_attempt,
                'time_budget_s': g.time_budget_s,
                'sandbox': (f'os ({self.s.sandbox.mode})' if self.s.sandbox.available
                            else 'python_guard (weaker)')}

    def _open_bag(self) -> str:
        """The recorder opens this trial's bag (it then records the cell's topics until `_close_bag`)."""
        metadata = {**scrub_value(self._goal_dict()), 'cell': self.s.cell,
                    'policy_source': scrub(self.policy_source, limit=1 << 20),
                    'config': self.cfg.model_dump(), 'versions': _versions(), 'started_unix': time.time()}
        self.published_before = dict(self.s.published)
        self.safe_before = self.s.safe_commands_taken
        request = StartRecording.Request(trial_id=self.trial_id, bag_dir=self.cfg.bag_dir,
                                         metadata_json=json.dumps(metadata, default=str))
        # Re-sent while unanswered: the first request to a recorder that has just restarted can be lost
        # (enpire_common.service_call); the recorder answers a copy with the bag the first one opened.
        future = call_resending(self.s.recorder_start, request, resend_s=self.cfg.recorder_resend_wall_s,
                                give_up_s=self.cfg.recorder_timeout_wall_s)
        try:
            response = self._wait(future, self.cfg.recorder_timeout_wall_s, 'recorder start', wall=True)
        except TrialAborted as exc:
            # The start may still succeed after the trial ended (a slow recorder): that bag is closed as
            # aborted at once, never left open to refuse the cell's next trials.
            future.add_done_callback(functools.partial(self._close_late_bag, str(exc)))
            raise
        if not response.ok:
            raise TrialAborted(f'recording failed: the recorder did not open the bag: {response.error}')
        return response.bag_path

    def _close_late_bag(self, why: str, future) -> None:
        response = future.result()
        if response is None or not response.ok:
            return
        self.s.get_logger().warning(f'trial {self.trial_id}: its bag opened after the trial ended ({why}): '
                                    f'closed as aborted: {response.bag_path}')
        reason = f'the trial never ran: {why}'
        self.s.recorder_stop.call_async(StopRecording.Request(status='aborted', summary_json=json.dumps(
            {'reason': reason, 'failure_reason': reason})))

    def _close_bag(self, status: str, summary: dict) -> str:
        """The recorder closes the bag once it holds what this trial saw and sent; '' when it did, else
        why the bag is incomplete (the recorder is gone: its bag is salvaged as aborted later)."""
        s = self.s
        marks = [RecordingMark(topic=name, count=s.published[name] - self.published_before.get(name, 0))
                 for name in s.published]
        if s.state is not None:
            marks.append(RecordingMark(topic=names.CELL_STATE, stamp=s.state.header.stamp))
        if s.last_safe_stamp_ns:     # stamps repeat (the hold answers the state the last command did)
            marks.append(RecordingMark(topic=names.CELL_COMMAND, stamp=_time(s.last_safe_stamp_ns),
                                       count=s.safe_commands_taken - self.safe_before))
        request = StopRecording.Request(status=status, summary_json=json.dumps(summary, default=str),
                                        marks=marks)
        timeout = self.cfg.recorder_timeout_wall_s
        future = s.recorder_stop.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout) or future.result() is None:
            s.recorder_stop.remove_pending_request(future)
            return 'recording lost: the recorder did not answer the stop (its bag is salvaged as aborted)'
        if not future.result().ok:
            return f'recording lost: {future.result().error}'
        closed = s.wait_bag_closed(self.bag_path, timeout)
        if closed is None:
            return 'recording lost: the recorder did not close the bag (it is salvaged as aborted)'
        if closed.missing:
            s.get_logger().warning(f'trial {self.trial_id}: the bag closed without {list(closed.missing)}')
        return ''

    def _wait(self, future, timeout: float, what: str, cancel=None, wall: bool = False):
        """The future's result within `timeout` s of cell time (`wall`: of wall time)."""
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        deadline = (CellClock(time.monotonic_ns, stall_timeout_s=math.inf, name='wall time') if wall
                    else self.s.cell_clock).deadline(timeout)
        while not done.wait(0.05):
            self.s.drain()   # keep the latest frames while the reset runs
            if self.gh.is_cancel_requested:
                if cancel is not None:
                    cancel.cancel_goal_async()
                raise TrialAborted('cancelled')
            ended = deadline.expired()
            if ended is not None:
                raise TrialAborted(f'{what}: {ended.reason}')
        return future.result()

    # ---------------------------------------------------------------- the cell, as the trial loop drives it
    def reset(self) -> dict:
        """The reset action, verified; whether a simulated cell's initial ground truth reached the bag."""
        self.s.clock.switch('reset')
        since_ns = _stamp_ns(self.s.cell_stamp())
        if not self.s.reset_client.wait_for_server(timeout_sec=10.0):
            raise TrialAborted('reset failed: no reset action server')
        goal = ResetCell.Goal(task=self.goal.task, seed=self.goal.seed,
                              distribution=self.distribution,
                              max_tries=self.cfg.reset_max_tries)
        result = self._wait(self.s.reset_client.send_goal_async(goal), 10.0, 'reset goal')
        if not result.accepted:
            raise TrialAborted('reset failed: goal rejected by the reset server')
        wrapped = self._wait(result.get_result_async(), self.cfg.reset_timeout_s, 'reset result',
                             cancel=result)
        outcome = wrapped.result
        if not outcome.success:
            raise TrialAborted(f'reset failed (no trial on an unverified reset): {outcome.failure_reason}')
        truth = bool(self.bag_path) and self.s.initial_truth_published(since_ns, self.cfg.step_timeout_s)
        self.s.clock.switch('executing')
        self.scene = self.reading.scene(self.goal.seed, goal.distribution, outcome.achieved_state)
        # The reset's result as the cameras saw it; the exact initial state only on the privileged topic.
        return {'tries': outcome.tries_used,
                'errors': dict(zip(outcome.error_names, (float(e) for e in outcome.errors), strict=False)),
                'estimated_state': list(outcome.achieved_state), 'target_state': list(outcome.target_state),
                'target_tool': list(outcome.target_tool), 'evidence': outcome.evidence_path,
                'privileged_initial_state': truth}

    def stop_reason(self) -> str:
        if not rclpy.ok(context=self.s.context):
            raise TrialAborted('shutting down')
        if self.bag_path and time.monotonic() - self.recorder_checked > 1.0:   # a graph query, once a second
            self.recorder_checked = time.monotonic()
            if not self.s.recorder_ready():
                raise TrialAborted('recording lost: the recorder left the graph mid-trial (its bag is '
                                   'salvaged as aborted when a recorder starts again)')
        return 'cancelled' if self.gh.is_cancel_requested else ''

    def begin_attempt(self, attempt: int) -> tuple[float, ...]:
        if not self.s.wait_command_path(COMMAND_PATH_WALL_S):
            raise TrialAborted(f'cell not responding: no safety node takes the policy commands '
                               f'({names.POLICY_COMMAND} not matched to one after {COMMAND_PATH_WALL_S} s)')
        state = self.s.state or self.s.wait_state_after(-1, self.cfg.step_timeout_s)
        if state is None:
            raise TrialAborted('no cell state: is the cell running?')
        self.state, self.attempt_t0_ns, self.timeouts = state, _stamp_ns(state.header.stamp), 0
        return self.reading.hold(state)

    def observe(self, step: int, attempt: int) -> Observation:
        self.s.wait_frames(_stamp_ns(self.state.header.stamp), self.cfg.frame_wait_s)
        return self.s.observation(self.state, step, attempt, self.attempt_t0_ns, self.reading, self.scene)

    def command(self, values) -> None:
        """The command answers the step's state (its stamp); the next step answers the state after it."""
        stamp = self.state.header.stamp
        self.s.publish_command(values, self.action.frame, stamp)
        new = self.s.wait_state_after(_stamp_ns(stamp), self.cfg.step_timeout_s)
        if new is None:
            self.timeouts += 1
            if self.timeouts >= self.cfg.max_step_timeouts:
                raise TrialAborted(f'cell not responding: no state for {self.timeouts} commands')
            return
        self.timeouts, self.state = 0, new

    def hold(self) -> None:
        """Leave the cell safe: command where the cell is now (a stop)."""
        state = self.s.state
        if state is not None and self.reading is not None:
            stop = self.reading.hold(state)
            self.s.publish_command(stop, self.action.frame, state.header.stamp)
            self.hold_target, self.hold_after_ns = stop, _stamp_ns(state.header.stamp)

    def verify(self, attempt: int, final: bool) -> Verdict:
        self.s.clock.switch('verifying')
        state = self.s.state
        if state is not None:   # the frames of the step to judge
            self.s.wait_frames(_stamp_ns(state.header.stamp), self.cfg.frame_wait_s)
        verdict = self.s.call_verify(self.goal.task, final and self.cfg.save_evidence)
        if verdict is None:
            verdict = FusedVerdict(task=self.goal.task, state=FusedVerdict.UNCERTAIN, success=False,
                                   reason='verify service unavailable or timed out')
        if not verdict.header.stamp.sec:   # no frame judged: the cell's time of asking
            verdict.header.stamp = self.s.cell_stamp()
        # The verify node stamps a verdict with the capture stamp of the frames it judged; the recorder
        # keeps those frames with the verdict.
        self.s.publish_verdict(verdict)
        self.s.clock.switch('executing')
        return Verdict(success=verdict.success, score=float(verdict.score), reason=verdict.reason,
                       evidence_path=verdict.evidence_path)

    def settle(self) -> None:
        """Keep recording until the hold has reached the cell (its safe command and the state after it),
        so the bag holds every command, the stop included."""
        try:
            self.s.wait_safe_commands(self.unanswered_before, self.cfg.step_timeout_s)
            if self.hold_target is not None:
                # The state the hold produced, not an older one that already tracked the same vector (a
                # tool pressed against a limit commands the same values step after step).
                self.s.wait_state_after(self.hold_after_ns, self.cfg.step_timeout_s)
                self.s.wait_state_tracking(self.hold_target, self.cfg.step_timeout_s)
        except TrialAborted as exc:     # a dead cell: the bag closes with what it has
            self.s.get_logger().warning(f'trial {self.trial_id}: settling: {exc}')
        self.s.drain()

    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None:
        self.s.publish_event(self.trial_id, name, attempt, score, **detail)

    def feedback(self, phase: str, attempt: int = 0, step: int = 0, score: float = 0.0) -> None:
        self.gh.publish_feedback(RunTrial.Feedback(phase=phase, attempt=attempt, step=step,
                                                   score=float(score)))


def main(args=None) -> int:
    return run_node(TrialServer, args=args, executor=lambda: SubmitOnceExecutor(num_threads=6))


if __name__ == '__main__':
    raise SystemExit(main())


__all__ = ['TrialServer', 'TrialRun', 'main']
