"""The /<cell>/verify service: judge a task from the cell's cameras (enpire_env.verification).

Serves every installed task (or the one named by the `task` parameter): a request names its task, checked
against the task registry, and is judged with that task's own judge and settings (`Task.verifier`).

Keeps the latest frame of every configured camera with its table-to-image mapping, and answers Verify
requests with the fused verdict, each camera's verdict and, on request, saved evidence. The mapping is
the homography of the frame's stamp where one is published (the simulated cell, moving cameras), else
derived from the camera's CameraInfo and its pose on /tf_static (a real cell; enpire_env.calibration). A
3-D task's judge (`needs = 'camera'`) gets instead each frame's calibrated camera model in the task's frame
(CameraInfo's K, the optical frame's pose on /tf_static) and the scene as the reset placed it (the static
frames `placed/<object>`); a camera not yet calibrated is judged 'no_calibration', never guessed.
A request judges the cell's latest step: it waits (up to `step_frame_wait_s` wall seconds: their delivery)
for each streaming camera's frame of that step, and the verdict is stamped with the capture stamp of the
frames it judged. Frame age is judged on the node's clock: the cell's sim time in a simulated cell
(use_sim_time, /clock remapped to its cell's clock), where an idle lockstep cell's frames do not age; wall
time on a real cell. A sim-time node asked before its first clock message refuses with that reason.
The cameras are subscribed around verifications (from the first request until `CAMERA_HOLD_WALL_S` after
the last): a request that opens them waits for the match and the cameras' first frames of the step. The
service runs off a composed cell's spin thread (WaitingCallbackGroup), so the cell publishes meanwhile.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from enpire_common import names, task_registry
from enpire_common.executors import WaitingCallbackGroup
from enpire_common.node_main import run_node
from enpire_common.node_parameters import declare_parameters
from enpire_common.on_demand import OnDemandSubscriptions
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from enpire_env.calibration.table_mapping import CalibratedCameras
from enpire_env.request_checks import verify_request_problem
from enpire_env.verification import Frame, Verifier, load_config
from enpire_env.verification.config import VERIFY_RUNTIME, VerifyNodeParameters
from enpire_env.verification.evidence import save_evidence
from enpire_env.verification.fusion import RULES
from enpire_env.verification.models import CameraJudgement, FusedJudgement
from enpire_interfaces.msg import CameraVerdict, FusedVerdict, TableHomography
from enpire_interfaces.srv import Verify

# /tf_static as tf2's static broadcaster offers it: a verify node started late still gets the poses.
# Deep enough to keep every publisher's latched message until the next verification takes them.
_LATCHED = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Wall seconds: a verification waits this long at most for fresh camera subscriptions to match and bring
# their first frames; the cameras stay subscribed this long after a verification.
CAMERA_OPEN_WALL_S = 2.0
CAMERA_HOLD_WALL_S = 10.0
_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}


def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (8-bit encodings) to an RGB uint8 HxWx3 array (no cv_bridge needed)."""
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise ValueError(f'unsupported image encoding {msg.encoding!r}')
    row = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    img = row[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
    if msg.encoding == 'mono8':
        return np.repeat(img, 3, axis=2)
    if msg.encoding.startswith('bgr'):
        img = img[..., 2::-1]
    return np.ascontiguousarray(img[..., :3])


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class FrameBuffer:
    """Latest frame per camera, paired with the homography that has the same stamp or, for a camera
    with none, with the mapping from its calibration (`calibrated`)."""

    def __init__(self, keep: int = 8, calibrated: CalibratedCameras | None = None):
        self.keep = keep
        self.calibrated = calibrated
        self.exact: dict[float, object] = {}   # float stamp -> the message's own stamp (seconds lose ns)
        self._lock = threading.Lock()
        self._images: dict[str, list[tuple[float, np.ndarray]]] = {}
        self._homographies: dict[str, list[tuple[float, np.ndarray]]] = {}

    def add_image(self, cam: str, stamp: float, image: np.ndarray) -> None:
        with self._lock:
            q = self._images.setdefault(cam, [])
            q.append((stamp, image))
            del q[:-self.keep]

    def add_homography(self, cam: str, stamp: float, h: np.ndarray) -> None:
        with self._lock:
            q = self._homographies.setdefault(cam, [])
            q.append((stamp, h))
            del q[:-self.keep]

    def latest(self, cam: str, mapped: bool = True) -> Frame | None:
        """Newest image that has a homography with its stamp (fixed cameras: within 1 ms); `mapped` False
        (a 3-D task's judge maps with the camera's model): the newest image."""
        with self._lock:
            images = list(self._images.get(cam, []))
            homs = list(self._homographies.get(cam, []))
        if not mapped:
            return Frame(images[-1][1], None, images[-1][0]) if images else None
        for stamp, image in reversed(images):
            for h_stamp, h in reversed(homs):
                if abs(h_stamp - stamp) < 1e-3:
                    return Frame(image, h, stamp)
        if self.calibrated is None or not images or homs:
            return None
        stamp, image = images[-1]
        image, h = self.calibrated.map_frame(cam, image)
        return None if h is None else Frame(image, h, stamp)

    def has_frame_since(self, cam: str, stamp: float, streaming: bool | None = None, mapped: bool = True
                        ) -> bool:
        """False only for a camera that streams (`streaming`; None: it has sent an image) but has no
        judgeable frame (with its mapping, when `mapped`) from `stamp` on yet."""
        if streaming is None:
            with self._lock:
                streaming = bool(self._images.get(cam))
        frame = self.latest(cam, mapped) if streaming else None
        return not streaming or (frame is not None and frame.stamp >= stamp - 1e-6)


class VerifyNode(Node):
    def __init__(self, **node_options):
        super().__init__('verify', **node_options)
        # Perception backend: `backend` by name, or `detector` (+ `segmenter`) as a pair, e.g. detector: yolo
        # with yolo_weights: <path>. A missing weights/checkpoint file stops the node at start-up.
        # Metres per workspace pixel (a camera's pose on /tf_static -> its table-to-image mapping) and the
        # wait for a step's frames are declared with the rest (verification/config.py).
        declare_parameters(self, VerifyNodeParameters, VERIFY_RUNTIME, on_change=self._set_parameters)
        self.cameras = list(self.get_parameter('cameras').value)
        self.rule = self.get_parameter('fusion_rule').value   # '': each task's own rule
        if self.rule and self.rule not in RULES:
            raise ValueError(f'fusion_rule {self.rule!r} not in {RULES}')
        self.max_age = float(self.get_parameter('max_frame_age').value)
        self.evidence_dir = Path(self.get_parameter('evidence_dir').value)
        self.backend, options = self._backend_choice()
        # One verifier per task served, built now: a missing weights file or a bad setting stops the node at
        # start-up, not at the first request.
        self.verifiers = {task: Verifier(task, config, backend=self.backend or None, **options)
                          for task, config in self._task_configs().items()}
        self.verify_lock = threading.Lock()   # the backend caches per image: one verification at a time
        self.calibrated = CalibratedCameras(float(self.get_parameter('table_pixel_m').value))
        self.frames = FrameBuffer(calibrated=self.calibrated)
        self.step_frame_wait_s = float(self.get_parameter('step_frame_wait_s').value)
        # The cameras are read when a verification asks, not frame by frame (on_demand.py), and subscribed
        # only around verifications (lazy): an idle verify node costs next to nothing, and a simulated cell
        # renders no frame nobody subscribes to.
        self.sensors = OnDemandSubscriptions(self)
        for cam in self.cameras:
            camera = {'qos': qos_profile_sensor_data, 'lazy': True}
            self.sensors.add(f'image/{cam}', Image, names.camera_image(cam), **camera)
            self.sensors.add(f'homography/{cam}', TableHomography, names.camera_homography(cam), **camera)
            self.sensors.add(f'info/{cam}', CameraInfo, names.camera_info(cam), **camera)
        self.sensors.add('tf_static', TFMessage, names.TF_STATIC, _LATCHED)
        self.verdict_pub = self.create_publisher(FusedVerdict, names.VERDICTS, 10)   # live views, bags
        # Off a composed cell's spin thread: a verification waits for frames its cell publishes meanwhile.
        self.create_service(Verify, names.VERIFY, self._on_verify, callback_group=WaitingCallbackGroup())
        own = "each task's"
        self.get_logger().info(f'verify ready: tasks={list(self.verifiers)} cameras={self.cameras} '
                               f'rule={self.rule or own} max_age={self.max_age}s '
                               f'backend={self.backend or own} '
                               + ' '.join(f'{k}={v}' for k, v in options.items()))

    def _set_parameters(self, params: VerifyNodeParameters) -> None:
        """A validated run-time change: taken by the next verification."""
        self.rule, self.max_age = params.fusion_rule, params.max_frame_age
        self.step_frame_wait_s = params.step_frame_wait_s

    def _task_configs(self) -> dict:
        """The tasks served and their verifier settings (ValueError for an unknown task or a settings file
        that could belong to more than one task)."""
        task = self.get_parameter('task').value
        problem = task_registry.problem(task) if task else ''
        if problem:
            raise ValueError(problem)
        served = [task] if task else list(task_registry.names())
        if not served:
            raise ValueError('no task is installed (entry-point group enpire.tasks): nothing to verify')
        path = self.get_parameter('verification_config').value or None
        if path and len(served) != 1:
            raise ValueError(f'verification_config {path!r} holds the settings of one task: name it with the '
                             f'`task` parameter (installed: {served})')
        return {name: load_config(name, path) for name in served}

    def _backend_choice(self) -> tuple[str, dict]:
        """The backend name ('' : each task's own) and its options from the parameters (ValueError on a
        contradiction)."""
        value = {name: str(self.get_parameter(name).value or '') for name in
                 ('backend', 'detector', 'segmenter', 'yolo_weights', 'sam_checkpoint', 'sam_model')}
        backend = value['backend']
        if value['detector'] or value['segmenter']:
            from enpire_env.perception.backends import backend_for
            paired = backend_for(value['detector'], value['segmenter'])
            if backend not in ('', 'classical', paired):
                raise ValueError(f"backend {backend!r} contradicts detector {value['detector']!r} / "
                                 f"segmenter {value['segmenter']!r} (which make {paired!r}); "
                                 'give one or the other')
            backend = paired
        options: dict = {}
        if backend in ('yolo', 'yolo_sam'):
            from enpire_env.perception.train import default_weights
            options['yolo_weights'] = value['yolo_weights'] or str(default_weights())
        if backend in ('yolo_sam', 'sam'):
            options['sam_checkpoint'] = value['sam_checkpoint']
            options['sam_model'] = value['sam_model']
        ignored = [k for k in ('yolo_weights', 'sam_checkpoint', 'sam_model')
                   if value[k] and k not in options]
        if ignored:
            self.get_logger().warning(f'backend {backend!r} does not use {ignored}: ignored')
        return backend, options

    def take_frames(self, cams: list[str]) -> None:
        """Move the frames, homographies and calibrations received since the last verification in."""
        for msg in self.sensors.take('tf_static'):
            self.calibrated.add_transforms(msg)
        for cam in cams:
            for msg in self.sensors.take(f'info/{cam}')[-1:]:
                try:
                    self.calibrated.set_camera_info(cam, msg)
                except ValueError as exc:   # e.g. the simulated wrist camera's CameraInfo without K
                    self.get_logger().debug(f'{cam}: camera_info has no usable intrinsics: {exc}')
            for msg in self.sensors.take(f'homography/{cam}'):
                self.frames.add_homography(cam, stamp_seconds(msg.header.stamp),
                                           np.asarray(msg.table_to_image, dtype=np.float64).reshape(3, 3))
            for msg in self.sensors.take(f'image/{cam}')[-self.frames.keep:]:
                try:
                    self.frames.add_image(cam, stamp_seconds(msg.header.stamp), image_to_rgb(msg))
                    self.frames.exact[stamp_seconds(msg.header.stamp)] = msg.header.stamp
                    while len(self.frames.exact) > 64:
                        del self.frames.exact[next(iter(self.frames.exact))]
                except ValueError as exc:
                    self.get_logger().warning(f'{cam}: {exc}', throttle_duration_sec=5.0)

    def calibrated_frames(self, frames: dict, task_frame: str) -> tuple[dict, dict | None]:
        """A 3-D task's frames with their cameras' models in the task's frame (undistorted first where the
        lens distorts), and the placed layout in that frame (None when the reset published none)."""
        out = {}
        for cam, frame in frames.items():
            calibrated = self.calibrated.camera_model(cam, task_frame) if frame is not None else None
            if calibrated is None:
                out[cam] = frame        # judged 'no_calibration' (or 'no_frame')
                continue
            model, undistort = calibrated
            image = frame.image
            if undistort is not None:
                try:
                    image = undistort(image)
                except ValueError:      # a frame of another size than its calibration: no calibration
                    out[cam] = frame
                    continue
            out[cam] = Frame(image, None, frame.stamp, model)
        return out, self.calibrated.placed(task_frame) or None

    def cell_now(self) -> float | None:
        """Now on the node's clock (the cell's sim time under use_sim_time); None before its first message."""
        now_ns = self.get_clock().now().nanoseconds
        return now_ns * 1e-9 if now_ns > 0 else None

    def _on_verify(self, request: Verify.Request, response: Verify.Response) -> Verify.Response:
        task = request.task
        cams = list(request.cameras) or self.cameras
        # An unknown task is answered with the installed ones; an installed one this node does not serve
        # (the `task` parameter) with the served ones.
        error = (task_registry.problem(task)
                 or verify_request_problem(task, cams, self.verifiers, self.cameras))
        if error:
            response.ok, response.error = False, error
            return response
        now = self.cell_now()
        if now is None:
            response.ok, response.error = False, "the cell's clock has not started (no clock message yet)"
            return response
        verifier = self.verifiers[task]
        mapped = getattr(verifier.judge_frame, 'needs', 'homography') == 'homography'
        kinds = ('image', 'homography', 'info') if mapped else ('image', 'info')   # no homography in 3-D
        keys = [f'{kind}/{c}' for c in cams for kind in kinds]
        opening = not all(self.sensors.matched(k) for k in keys)
        streaming = self.sensors.open(keys, timeout_s=CAMERA_OPEN_WALL_S)
        try:
            self.take_frames(cams)
            # Freshly subscribed cameras send their first frames within a control period (a lockstep cell
            # re-sends its current ones on the match): allowed more than a step's delivery.
            wait = max(self.step_frame_wait_s, CAMERA_OPEN_WALL_S if opening else 0.0)
            deadline = time.monotonic() + wait
            while not all(self.frames.has_frame_since(c, now, f'image/{c}' in streaming, mapped)
                          for c in cams) and time.monotonic() < deadline:
                time.sleep(0.002)
                self.take_frames(cams)
        finally:
            self.sensors.close_later(CAMERA_HOLD_WALL_S)     # kept while verifications follow each other
        frames = {c: self.frames.latest(c, mapped) for c in cams}
        layout = None
        if not mapped:
            frames, layout = self.calibrated_frames(frames, verifier.task.action.frame)
        # Stamped with the capture stamp of the frames judged (on the cell's clock): a bag pairs the
        # verdict with exactly those frames and the cell state of their step.
        judged = [f.stamp for f in frames.values() if f is not None]
        now_msg = (self.frames.exact.get(max(judged)) if judged else None) \
            or Time(nanoseconds=round(now * 1e9)).to_msg()
        with self.verify_lock:
            fused, judged_frames = verifier.verify_frames(
                frames, cameras=cams, now=now, rule=self.rule or None, max_age=self.max_age, layout=layout)
            if request.locate_scene:
                scene, response.scene_problem = verifier.locate_scene(frames, now=now, max_age=self.max_age)
                response.scene = [] if scene is None else [float(v) for v in scene]
        response.ok = True
        response.verdict = to_msg(fused, task, self.frames.exact)
        response.verdict.header.stamp = now_msg
        response.verdict.header.frame_id = names.TABLE_FRAME
        if request.save_evidence:
            try:
                folder = save_evidence(self.evidence_dir, fused, frames, judged_frames,
                                       extra={'task': task, 'cameras': cams, 'now': now})
                response.verdict.evidence_path = str(folder)
            except OSError as exc:
                self.get_logger().error(f'could not save evidence: {exc}')
        self.verdict_pub.publish(response.verdict)
        return response


def to_msg(fused: FusedJudgement, task: str, exact_stamps: dict | None = None) -> FusedVerdict:
    msg = FusedVerdict(task=task, state=int(fused.state), success=fused.success, score=fused.score,
                       confidence=fused.confidence, rule=fused.rule, reason=fused.reason)
    msg.cameras = [camera_msg(c, exact_stamps) for c in fused.cameras]
    return msg


def camera_msg(j: CameraJudgement, exact_stamps: dict | None = None) -> CameraVerdict:
    msg = CameraVerdict(camera=j.camera, state=int(j.state), score=float(j.score),
                        confidence=float(j.confidence), reason=j.reason, latency_ms=float(j.latency_ms))
    if j.stamp is not None and exact_stamps and j.stamp in exact_stamps:
        msg.frame_stamp = exact_stamps[j.stamp]
    elif j.stamp is not None:
        msg.frame_stamp.sec = int(np.floor(j.stamp))
        msg.frame_stamp.nanosec = int((j.stamp - np.floor(j.stamp)) * 1e9)
    if j.estimate is not None:
        msg.estimate = [float(v) for v in j.estimate]   # the task-state vector as this camera sees it
    return msg


def main(args=None) -> int:
    return run_node(VerifyNode, args=args, name='verify')


if __name__ == '__main__':
    raise SystemExit(main())
