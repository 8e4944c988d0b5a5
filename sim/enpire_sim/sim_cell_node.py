"""sim_cell: a task's simulated cell as mock hardware on the ROS graph (one node per cell namespace).

    python -m enpire_sim.sim_cell_node --ros-args -r __ns:=/cell_0 -p task:=<name> \
        --params-file sim/config/sim_cell.yaml

The node is task-free: parameter `task` names a task of the registry (`enpire_common.task_registry`);
its `simulator` reference builds the physics: a 2-D table scene the node's camera rig draws
(`enpire_sim.simulator.CellSimulator`) or a 3-D simulator that renders its own fixed cameras
(`SelfRenderingSimulator`, e.g. MuJoCo); its `sample_initial_state` gives the start, its `action` spec
bounds the commands (in its frame), and its `success_rule` judges the ground truth. An unknown task or
distribution is a clear error at start-up.

Topics and services (names from enpire_common.names, relative to the namespace):
- publishes `cell_state` (CellState) and, per camera, `cameras/<cam>/image_raw` (Image, rgb8, frame_id
  `<cam>_optical_frame`), `camera_info` (CameraInfo: every camera as the pinhole `cameras.pinhole`
  gives) and `table_homography` (TableHomography; off with `publish_homography: false`, as in a real
  cell); the fixed cameras' poses in the `table` frame on /tf_static (tf2_msgs/TFMessage, latched, in
  metres with `table_pixel_m` metres per table unit). A self-rendering simulator's cameras: its frames,
  its CameraInfo and its cameras' poses in its frame (the task's, e.g. `world`), no homography;
  `privileged/ground_truth` (GroundTruth: the task state and the task's score) for tests and audits only;
- subscribes `cmd/target` (Command in the task's action frame: its action vector, in its units);
- serves `mock_hardware/place_objects` (PlaceObjects: the task's scene objects, by name, and the tool).
The CellState carries no task state (the cell measures none of it), and joints only where the simulator
measures some beside the tool (an optional `joints()`: name -> position, e.g. an arm's gripper opening).

The cell's clock (sim time, the ROS way): the node publishes rosgraph_msgs/Clock on `clock` (relative:
`/<cell>/clock`), once per control tick, before the tick's state and frames. Every other node of the
simulated cell runs with `use_sim_time: true` and `/clock` remapped to `/<cell>/clock` (bringup file
sim_cells.yaml), so its timers, timeouts, budgets and stamps are this cell's time, and cells run
independently. This node is the clock source: its own timers run on the steady (wall) clock, never on
sim time. Sim time = start + one control period x control ticks since start; a placement is one tick.

Sim time starts at the wall time of the node's start-up, not at 0 as Gazebo's does: a sim-time node reads
0 until its first clock message, and 0 is also what an unset header stamp holds, so a cell whose time
began at 0 could not be told from one with no clock yet; and stamps near the wall time keep a bag's
times readable as dates and the bags of different runs in order.

Pacing (parameter `pacing`):
- 'as_fast': lockstep. Each accepted command advances the sim exactly one control step (one period of
  the task's control rate in sim time), then the clock, the state and the frames of that step are
  published. Sim time stands still between commands: the cell's nodes see no time pass while a policy
  thinks or a verifier judges. Between commands the clock and the last state are re-published at
  `idle_publish_hz` (same stamp, same step) so late subscribers see the cell.
- 'real_time': a steady-clock timer at control rate x `real_time_factor` advances the sim one control
  period toward the latest accepted command per tick. An overloaded machine delivers ticks late, so sim
  time slows down with it and no deadline in the cell breaks.

The state, ground truth, every frame, its CameraInfo and its
TableHomography of one step carry the same stamp, so consumers match them by stamp. A camera is rendered
and published only while someone subscribes to its image, CameraInfo or homography, and the ground truth
only while someone subscribes to it (the cell's consumers subscribe while they need them: a trial, a
verification, an open bag), so an idle cell draws nothing; a lockstep cell re-sends a camera's current
frame when a new subscriber matches (image_transport's connect callback), since its time stands still.
A camera with `rate_hz` below the control rate publishes on every (control rate / rate_hz)-th tick.
Faults (parameter `camera_faults`, a YAML/JSON mapping camera -> CameraFaults fields, settable at run
time): a dropped frame is not published at all; a stale camera re-sends its frozen frame with the stamp it
was captured at, as a hung camera pipeline re-sending its last message does (so the verifier's frame-age
check can see it).

Bad commands (non-finite, outside the task's action bounds, wrong frame_id) are rejected, counted per
reason and logged (throttled); they never advance the sim. Bad placements return success=false with a
reason.
"""
from __future__ import annotations

import math
import time
from collections import Counter

import yaml
from enpire_common import messages, names, task_registry
from enpire_common.executors import lean_publisher_events, lean_subscription_events
from enpire_common.node_main import run_node
from enpire_common.parameters import describe, refuse_non_finite
from enpire_common.task import Task
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from enpire_env.calibration.table_mapping import DEFAULT_TABLE_PIXEL_M
from enpire_env.calibration.transforms import fill_transform
from enpire_env.request_checks import name_problem, names_problem
from enpire_interfaces.msg import CellState, Command, GroundTruth, TableHomography
from enpire_interfaces.srv import PlaceObjects
from enpire_sim.cameras import DEFAULT_CAMERAS, CameraFaults, CameraRig, RenderedRig, load_cameras, pinhole
from enpire_sim.simulator import CellSimulator, SelfRenderingSimulator


def parse_faults(text: str) -> dict[str, CameraFaults]:
    """`camera_faults` parameter: YAML/JSON mapping camera name -> CameraFaults fields ('' = none)."""
    data = yaml.safe_load(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise ValueError('camera_faults must be a mapping camera -> fault fields')
    return {str(cam): CameraFaults(**(fields or {})) for cam, fields in data.items()}


def load_task(name: str) -> Task:
    """The task called `name` ('': the one installed task, where only one is); ValueError naming the
    installed tasks."""
    try:
        return task_registry.get(name or task_registry.sole())
    except task_registry.UnknownTask as exc:
        raise ValueError(f'sim_cell: {exc}') from None


def build_simulator(task: Task) -> CellSimulator | SelfRenderingSimulator:
    """The task's simulator, checked against what the node needs of it."""
    sim = task.load('simulator')()
    if not isinstance(sim, (SelfRenderingSimulator, CellSimulator)):
        raise TypeError(f'task {task.name!r}: its simulator {task.simulator!r} is neither a CellSimulator '
                        'nor a SelfRenderingSimulator')
    return sim


def check_command(msg: Command, task: Task) -> tuple[str, str] | None:
    """(reason key, detail) of a refused command, or None when it is fine."""
    if msg.header.frame_id != task.action.frame:
        return 'wrong_frame', f'frame_id {msg.header.frame_id!r} is not {task.action.frame!r}'
    if len(msg.values) != task.action.size:
        return 'wrong_size', f'{len(msg.values)} values, the action has {task.action.size}'
    values = command_values(msg)
    if not all(math.isfinite(v) for v in values):
        return 'non_finite', f'non-finite command {values}'
    action = task.action
    outside = [f'{n} {v:.1f} not in [{lo:g}, {hi:g}]'
               for n, v, lo, hi in zip(action.names, values, action.low, action.high, strict=True)
               if not lo <= v <= hi]
    if outside:
        return 'out_of_range', 'command outside the action bounds: ' + ', '.join(outside)
    return None


def command_values(msg: Command) -> tuple[float, ...]:
    """The action vector a Command carries."""
    return messages.vector(msg.values)


def scene_problem(objects, tool, expected: tuple[tuple[str, int], ...], tool_size: int) -> str | None:
    """Why a requested scene is not this task's (None when it is): its objects by name, in order, with
    pose vectors of their lengths, and a tool of the tool's length."""
    got = tuple((o.name, len(o.pose)) for o in objects)
    if got != expected:
        shown = ', '.join(f'{n[:32]!r}({k})' for n, k in got[:4]) + (', ...' if len(got) > 4 else '')
        want = ', '.join(f'{n!r}({k})' for n, k in expected)
        return f'the scene is [{want}] (name(pose entries)), got [{shown}]'
    if len(tool) != tool_size:
        return f'the tool has {tool_size} entries, got {len(tool)}'
    return None


class SimCellNode(Node):
    def __init__(self, **node_options):
        super().__init__('sim_cell', **node_options)
        p, ro = self.declare_parameter, dict(read_only=True)
        self.task = load_task(p('task', '', describe(
            "the task whose simulated cell this is: a name of the task registry ('': the one installed, "
            'where only one is; bringup files name it)',
            **ro)).value)
        self.pacing = p('pacing', 'as_fast', describe(
            "as_fast: one control step per command (lockstep); real_time: control_hz x real_time_factor "
            "steps per wall second", constraints="'as_fast' or 'real_time'", **ro)).value
        if self.pacing not in ('as_fast', 'real_time'):
            raise ValueError(f"pacing must be 'as_fast' or 'real_time', got {self.pacing!r}")
        self.real_time_factor = float(p('real_time_factor', 1.0, describe(
            'real_time: sim seconds per wall second (the tick timer runs at control_hz x this)',
            low=0.01, high=100.0, **ro)).value)
        cameras_file = p('cameras_file', '', describe("camera rig YAML ('' = the three default cameras)",
                                                      **ro)).value
        faults_text = p('camera_faults', '', describe(
            'injected camera faults, e.g. "top:occlusion=0.3" (may change at run time)')).value
        seed = p('initial_seed', 0, describe('seed of the initial state', low=0, high=2**31 - 1,
                                             integer=True, **ro)).value
        distribution = p('initial_distribution', '', describe(
            f"initial state distribution (one of {', '.join(self.task.distributions)}; '': the first)",
            **ro)).value or self.task.distributions[0]
        problem = name_problem(distribution, self.task.distributions, f'{self.task.name} distribution')
        if problem:
            raise ValueError(problem)
        idle_hz = p('idle_publish_hz', 2.0, describe('cell_state republished this often when idle (0: never)',
                                                     low=0.0, high=100.0, **ro)).value
        fault_seed = p('fault_seed', 0, describe('seed of the camera fault noise', low=0, high=2**31 - 1,
                                                 integer=True, **ro)).value
        # A real-time controller keeps streaming targets chosen before a placement (the safety node's
        # stop, a policy's last command); obeying them would drag the freshly placed objects away.
        self.lockout_ns = int(1e9 * p('placement_lockout_s', 0.3, describe(
            'real_time: commands ignored this long (sim time) after a placement (s)', low=0.0, high=10.0,
            **ro)).value)
        self.table_pixel_m = float(p('table_pixel_m', DEFAULT_TABLE_PIXEL_M, describe(
            'metres per table unit (for the camera models)', low=1e-5, high=0.1, **ro)).value)
        self.publish_homography = bool(p('publish_homography', True, describe(
            'also publish each camera\'s TableHomography (older consumers)', **ro)).value)

        self.sim = build_simulator(self.task)
        self.self_rendering = isinstance(self.sim, SelfRenderingSimulator)
        self.success_rule = self.task.load('success_rule')
        self.tick_ns = round(1e9 / self.task.control_hz)
        if self.self_rendering:
            if cameras_file:
                raise ValueError(f'task {self.task.name!r} renders its own cameras: leave cameras_file empty')
            specs, file_faults, self.frame_id = (), {}, self.sim.frame_id
            self.publish_homography = False        # no table plane: CameraInfo and /tf_static say it all
            self.rig = RenderedRig(self.sim, seed=fault_seed)
            self._every = {cam: 1 for cam in self.rig.names}     # a frame per control step
        else:
            specs, file_faults = (load_cameras(cameras_file) if cameras_file else (DEFAULT_CAMERAS, {}))
            self.frame_id = names.TABLE_FRAME
            self.rig = CameraRig(specs, {}, seed=fault_seed, scene=self.sim.scene)
            self._every = {s.name: max(1, round(self.task.control_hz / s.rate_hz)) for s in specs}
        self.camera_names = self.rig.names
        faults = {**file_faults, **parse_faults(faults_text)}
        unknown = names_problem(list(faults), list(self.camera_names), 'camera')
        if unknown:
            raise ValueError(f'camera_faults: {unknown}')
        for cam, fault in faults.items():
            self.rig.set_faults(cam, fault)
        self._frame_stamps: dict[str, tuple] = {}   # camera -> (last frame sent, its capture stamp)

        initial = self.task.load('sample_initial_state')(seed, distribution)
        self.scene_shape = tuple((o.name, len(o.pose)) for o in initial.scene())
        self.sim.place_objects(initial.scene(), initial.tool())
        # Intrinsics stay fixed, even for the wrist camera whose pose moves with the tool.
        if self.self_rendering:
            self.intrinsics = {cam: self.sim.camera_info(cam) for cam in self.camera_names}
        else:
            self.intrinsics = {s.name: pinhole(s, self.sim.table, self.table_pixel_m, self.sim.view())[0]
                               for s in specs}
        self.rejected: Counter[str] = Counter()
        self._ticks = 0
        self._start_ns = time.time_ns()     # sim time starts at the wall time of start-up (see above)
        self._pending: tuple[float, ...] | None = None
        self._placed_at_ns = 0

        self.clock_pub = self.create_publisher(ClockMsg, names.CLOCK, 10,
                                               event_callbacks=lean_publisher_events())
        # A lockstep cell re-sends its state to a new subscriber (its time stands still between commands).
        def state_events():
            return (PublisherEventCallbacks(matched=self._on_state_matched, use_default_callbacks=False)
                    if self.pacing == 'as_fast' else lean_publisher_events())
        self.state_pub = self.create_publisher(CellState, names.CELL_STATE, 10,
                                               event_callbacks=state_events())
        self.truth_pub = self.create_publisher(GroundTruth, names.GROUND_TRUTH, 10,
                                               event_callbacks=state_events())
        sensor = qos_profile_sensor_data      # cameras as ROS drivers offer them: best effort, keep last 5

        def camera_pub(msg_type, topic, cam):
            # A lockstep cell's time stands still between commands: a consumer that just subscribed gets the
            # current frame at once (image_transport's connect callback), not at the next idle re-publish.
            events = (PublisherEventCallbacks(matched=lambda info: self._on_camera_matched(cam, info),
                                              use_default_callbacks=False)
                      if self.pacing == 'as_fast' else lean_publisher_events())
            return self.create_publisher(msg_type, topic, sensor, event_callbacks=events)
        self.cam_pubs = {
            cam: (camera_pub(Image, names.camera_image(cam), cam),
                  camera_pub(CameraInfo, names.camera_info(cam), cam),
                  camera_pub(TableHomography, names.camera_homography(cam), cam)
                  if self.publish_homography else None)
            for cam in self.camera_names}
        self.tf_static_pub = self.create_publisher(
            TFMessage, names.TF_STATIC, QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._publish_static_transforms()
        self.create_subscription(Command, names.CELL_COMMAND, self._on_command, 10,
                                 event_callbacks=lean_subscription_events())
        self.create_service(PlaceObjects, names.PLACE_OBJECTS, self._on_place)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        steady = Clock(clock_type=ClockType.STEADY_TIME)   # the clock source never paces on its own time
        if self.pacing == 'real_time':
            self.create_timer(1.0 / (self.task.control_hz * self.real_time_factor), self._on_tick,
                              clock=steady)
        if idle_hz > 0 and self.pacing == 'as_fast':
            self.create_timer(1.0 / idle_hz, self._republish_state, clock=steady)
        self._publish_step(all_cameras=True)
        self.get_logger().info(
            f'sim_cell up: task={self.task.name} pacing={self.pacing}'
            + (f' x{self.real_time_factor:g}' if self.pacing == 'real_time' else '')
            + f' cameras={list(self.camera_names)} '
            f'initial=({distribution}, seed {seed}) faults={sorted(faults)}')

    # -- inputs --------------------------------------------------------------------------------------
    def _on_command(self, msg: Command) -> None:
        refused = check_command(msg, self.task)
        if refused is not None:
            self.rejected[refused[0]] += 1
            self.get_logger().warning(
                f'rejected command: {refused[1]} (rejections so far: {dict(self.rejected)})',
                throttle_duration_sec=1.0)
            return
        target = command_values(msg)
        since_placement_ns = self.sim_time_ns() - self._placed_at_ns
        if self.pacing == 'real_time' and since_placement_ns < self.lockout_ns:
            self.rejected['placement_lockout'] += 1
            return
        if self.pacing == 'as_fast':
            self.sim.step(target)
            self._ticks += 1
            self._publish_step()
        else:
            self._pending = target

    def _on_tick(self) -> None:
        if self._pending is not None:
            command = self._pending
            if self.self_rendering:
                self._pending = None     # a command is applied once; idle ticks hold the cell
        else:
            command = self.sim.idle_command() if self.self_rendering else self.sim.target
        self.sim.step(command)
        self._ticks += 1
        self._publish_step()

    def _on_place(self, request: PlaceObjects.Request, response: PlaceObjects.Response):
        objects, tool = messages.scene_objects(request.objects), messages.vector(request.tool)
        reason = (scene_problem(objects, tool, self.scene_shape, len(self.sim.tool_position))
                  or self.sim.placement_problem(objects, tool))
        if reason is not None:
            response.success, response.message = False, f'placement refused: {reason}'
            self.get_logger().warning(response.message)
            return response
        self.sim.place_objects(objects, tool)
        self._pending = None
        self._ticks += 1
        self._placed_at_ns = self.sim_time_ns()
        self._publish_step(all_cameras=True)
        state = ', '.join(f'{v:.4f}' for v in self.sim.task_state())
        response.success = True
        response.message = f'placed: task state ({state}), tool at {tool}'
        return response

    def _on_set_parameters(self, params) -> SetParametersResult:
        finite = refuse_non_finite(params)
        if not finite.successful:
            return finite
        for param in params:
            if param.name == 'camera_faults':
                try:
                    faults = parse_faults(param.value)
                    unknown = names_problem(list(faults), list(self.camera_names), 'camera')
                    if unknown:
                        raise ValueError(unknown)
                except Exception as exc:  # noqa: BLE001 - any bad value is refused, the node lives on
                    return SetParametersResult(successful=False, reason=f'bad camera_faults: {exc}')
                for cam in self.camera_names:
                    self.rig.set_faults(cam, faults.get(cam, CameraFaults()))
                self.get_logger().info(f'camera faults now {faults}')
            elif param.name in ('task', 'pacing', 'real_time_factor', 'cameras_file'):
                return SetParametersResult(successful=False, reason=f'{param.name} is fixed at start')
        return SetParametersResult(successful=True)

    # -- outputs -------------------------------------------------------------------------------------
    def _publish_static_transforms(self) -> None:
        """The fixed cameras' poses, once and latched, as tf2's StaticTransformBroadcaster sends them."""
        stamp = self.stamp()
        poses = ({cam: self.sim.camera_pose(cam) for cam in self.camera_names} if self.self_rendering
                 else {s.name: pinhole(s, self.sim.table, self.table_pixel_m)[1]
                       for s in self.rig.specs if s.kind != 'wrist'})
        msg = TFMessage(transforms=[
            fill_transform(TransformStamped(), self.frame_id, names.camera_frame(cam), pose, stamp)
            for cam, pose in poses.items()])
        self.tf_static_pub.publish(msg)

    def sim_time_ns(self) -> int:
        return self._start_ns + self._ticks * self.tick_ns

    def stamp(self):
        return Time(nanoseconds=self.sim_time_ns()).to_msg()

    def _publish_step(self, all_cameras: bool = False) -> None:
        stamp = self.stamp()
        self.clock_pub.publish(ClockMsg(clock=stamp))    # first: the cell's nodes are at this step's time
        self._publish_state(stamp)
        self._publish_frames(stamp, [cam for cam in self.camera_names
                                     if all_cameras or self._ticks % self._every[cam] == 0])

    def watched(self, cam: str) -> bool:
        """Whether anyone subscribes to the camera's image, CameraInfo or homography (matched readers)."""
        return any(pub is not None and pub.get_subscription_count() > 0 for pub in self.cam_pubs[cam])

    def _on_state_matched(self, info) -> None:
        if info.current_count_change > 0:
            self._publish_state()

    def _on_camera_matched(self, cam: str, info) -> None:
        if info.current_count_change > 0:
            self._publish_frames(self.stamp(), [cam])

    def _publish_frames(self, stamp, cameras: list[str]) -> None:
        """The cameras' frames of this step, each with its CameraInfo and homography. A camera nobody
        subscribes to is neither rendered nor published (most of an idle cell's cost): its consumers
        subscribe while they need frames (enpire_common.on_demand)."""
        cameras = [cam for cam in cameras if self.watched(cam)]
        if not cameras:
            return
        frames = (self.rig.capture(self.sim.step_count, cameras, key=self._ticks) if self.self_rendering
                  else self.rig.capture(self.sim.view(), cameras))
        for cam in self.camera_names:
            frame = frames.get(cam)
            if frame is None:
                continue
            image_pub, info_pub, homography_pub = self.cam_pubs[cam]
            frame_id = names.camera_frame(cam)
            last = self._frame_stamps.get(cam)
            # A frozen (stale) frame is the same object again: it keeps the stamp of its capture.
            frame_stamp = last[1] if last is not None and last[0] is frame else stamp
            self._frame_stamps[cam] = (frame, frame_stamp)
            img = Image()
            img.header.stamp, img.header.frame_id = frame_stamp, frame_id
            img.height, img.width = frame.image.shape[:2]
            img.encoding, img.is_bigendian, img.step = 'rgb8', 0, img.width * 3
            img.data = frame.image.tobytes()
            info = CameraInfo()
            info.header = img.header
            self.intrinsics[cam].fill_camera_info(info)
            image_pub.publish(img)
            info_pub.publish(info)
            if homography_pub is not None:
                homography = TableHomography()
                homography.header = img.header
                homography.table_to_image = frame.table_to_image.flatten().tolist()
                homography_pub.publish(homography)

    def _publish_state(self, stamp=None) -> None:
        stamp = stamp or self.stamp()
        state = CellState(step=self.sim.step_count, commanded=messages.floats(self.sim.target))
        state.header.stamp, state.header.frame_id = stamp, self.frame_id
        messages.set_tool(state, self.sim.tool_position, self.sim.tool_velocity)
        joints = self.sim.joints() if hasattr(self.sim, 'joints') else {}
        state.joints.name, state.joints.position = list(joints), messages.floats(list(joints.values()))
        self.state_pub.publish(state)
        if not self.truth_pub.get_subscription_count():
            return          # the task's rule is a tenth of a tick's work: not for nobody
        task_state = self.sim.task_state()
        score, success = self.success_rule(task_state)    # the task's own rule on its exact state
        truth = GroundTruth(header=state.header, step=state.step, task_state=messages.floats(task_state),
                            tool=messages.floats(self.sim.tool_position), score=float(score),
                            success=bool(success))
        self.truth_pub.publish(truth)

    def _republish_state(self) -> None:
        # Cameras keep streaming while a lockstep cell idles, as real ones do: a subscriber that
        # joined late or dropped a best-effort frame still gets the current scene.
        if self.pacing == 'as_fast':
            self._publish_step(all_cameras=True)   # the clock too (same time): a late node gets it


def main(args=None) -> int:
    return run_node(SimCellNode, args=args, executor=SingleThreadedExecutor)


if __name__ == '__main__':
    raise SystemExit(main())
