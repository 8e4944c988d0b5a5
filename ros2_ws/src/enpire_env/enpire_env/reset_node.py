"""The reset node: `names.RESET` (enpire_interfaces/action/ResetCell) puts the cell in a seeded initial
state and verifies it from the cameras.

For a goal (task, seed, distribution, max_tries) it validates the goal against the task registry (an
invalid one is aborted with a `failure_reason` before anything moves), picks the target with the task's
`sample_initial_state(seed, distribution)`, then per try: `placing` (the task's placement routine, or the
one config/reset.yaml names; mock hardware: `names.PLACE_OBJECTS`), `settling` (waits for camera frames
taken after the placement), `verifying` (`names.VERIFY`; the task's fusion of the confident cameras'
task-state estimates must lie within the task's tolerances, overridable in config/reset.yaml),
`retrying`. A reset that cannot be verified is a failed reset. A 3-D task (`ResetSpec.multi_view`) is
located from every calibrated view at once by the verify service (`locate_scene`), and after a verified
reset its placed objects are published on /tf_static as frames `placed/<object>` in the task's frame (the
verify node's judge of such a task needs where the box with the hole stands). The result's vectors:
`target_state`, `target_tool`, `achieved_state` and `errors` named by `error_names` (the task's error
names). One reset at a time.

Its waits (settle, frames after the placement, answers of place_objects and verify) count the node's
clock: the cell's sim time under use_sim_time (`enpire_common.cell_clock`, with its wall-clock stall
backstop `clock_stall_timeout_s`), so a loaded machine slows them down instead of failing the reset.

Parameters (read at start-up, changes refused): `config_file` (default share/enpire_env/config/reset.yaml).
Run: python -m enpire_env.reset_node --ros-args -r __ns:=/cell_0
"""
from __future__ import annotations

import math
import threading
import time
import traceback
from pathlib import Path

import numpy as np
from enpire_common import messages, names, task_registry
from enpire_common.cell_clock import CellClock
from enpire_common.node_main import run_node
from enpire_common.on_demand import OnDemandSubscriptions
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from enpire_env.calibration.camera_model import Pose
from enpire_env.calibration.table_mapping import PLACED_PREFIX
from enpire_env.calibration.transforms import fill_transform
from enpire_env.reset import (
    CameraEstimate,
    Observation,
    PlacementOutcome,
    ResetConfig,
    ResetOutcome,
    TaskReset,
    load_routine_factory,
    load_task_reset,
    run_reset,
    target_state,
    validate_goal,
)
from enpire_interfaces.action import ResetCell
from enpire_interfaces.msg import CameraVerdict, CellState
from enpire_interfaces.srv import PlaceObjects, Verify


def default_config_file() -> str:
    """The installed config/reset.yaml, else the one in the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory('enpire_env')) / 'config' / 'reset.yaml'
        if installed.is_file():
            return str(installed)
    except (ImportError, LookupError, ValueError):
        pass
    return str(Path(__file__).resolve().parents[1] / 'config' / 'reset.yaml')


def _stamp(t) -> float:
    return t.sec + t.nanosec * 1e-9


class MockPlacementRoutine:
    """Mock hardware: ask the cell's place_objects service to put the scene's objects and the tool at the
    target."""

    name = 'mock_placement'

    def __init__(self, node: ResetNode, config: ResetConfig):
        self.node = node
        self.client = node.create_client(PlaceObjects, names.PLACE_OBJECTS, callback_group=node.group)

    def place(self, target, attempt: int) -> PlacementOutcome:
        if not self.client.wait_for_service(timeout_sec=self.node.config.service_timeout_s):
            return PlacementOutcome(False, f'service {self.client.srv_name} not available')
        request = PlaceObjects.Request(objects=messages.object_poses(target.scene()),
                                       tool=messages.floats(target.tool()))
        response = self.node.call(self.client, request)
        if response is None:
            return PlacementOutcome(False, f'{self.client.srv_name} did not answer')
        return PlacementOutcome(bool(response.success), response.message)


class ResetNode(Node):
    """Serves the ResetCell action: validate, place, settle, verify, retry."""

    def __init__(self, **node_options):
        super().__init__('reset', **node_options)
        self.config_file = self.declare_parameter('config_file', default_config_file(), ParameterDescriptor(
            description='reset configuration YAML (routine, tolerances, settle time), read at start-up',
            read_only=True)).value
        self.config = ResetConfig.from_yaml(self.config_file)
        self.cell_clock = CellClock.of_node(self, stall_timeout_s=self.config.clock_stall_timeout_s)
        self.add_on_set_parameters_callback(self._refuse_parameter_change)
        self.group = ReentrantCallbackGroup()
        self.verify_client = self.create_client(Verify, names.VERIFY, callback_group=self.group)
        self._state_lock = threading.Lock()
        self._states: list[tuple[float, int, float]] = []   # recent (cell stamp, step, arrival, unix s)
        self._baseline: dict[str, float] = {}   # camera -> frame stamp just before the placement
        self._placed_at = math.inf              # unix time of the last placement request
        # Cell states are read when a reset dates its placement, not one callback per state (on_demand.py).
        self.sensors = OnDemandSubscriptions(self)
        self.sensors.add('state', CellState, names.CELL_STATE,
                         QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT))
        # The routines every installed task places with (or the one the config names), built up front; a
        # task whose routine cannot be built here is refused with the reason (the others are still served).
        self._tasks: dict[str, TaskReset | str] = {}   # task -> its reset parts, or why it has none
        self._routines: dict[str, object] = {}         # routine spec -> routine
        for name in task_registry.names():
            spec = self.routine_spec(name)
            if spec and spec not in self._routines:
                factory = load_routine_factory(spec, {'mock_placement': MockPlacementRoutine})
                try:
                    self._routines[spec] = factory(self, self.config)
                except NotImplementedError as exc:
                    self._tasks[name] = f'task {name!r} cannot be reset here: {exc}'
        # Where the last verified reset placed a 3-D task's objects: latched, as tf2's static broadcaster.
        self.placed_pub = self.create_publisher(TFMessage, names.TF_STATIC, QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._busy = threading.Lock()
        self._server = ActionServer(self, ResetCell, names.RESET, execute_callback=self.execute_callback,
                                    goal_callback=self.goal_callback, cancel_callback=self.cancel_callback,
                                    callback_group=self.group)
        self.get_logger().info(f'reset ready (routines {sorted(self._routines)}) with {self.config_file}')

    # ---------------------------------------------------------------- action callbacks
    def goal_callback(self, goal_request) -> GoalResponse:
        """Accept every goal: an invalid one is aborted in execute with a clear failure_reason."""
        return GoalResponse.ACCEPT

    def cancel_callback(self, goal_handle) -> CancelResponse:
        """Accept cancels; the reset stops between phases."""
        return CancelResponse.ACCEPT

    def execute_callback(self, goal_handle) -> ResetCell.Result:
        """Validate the goal, then place/settle/verify with retries."""
        goal = goal_handle.request
        error = validate_goal(goal.task, goal.distribution, goal.max_tries, self.config)
        task = None if error else self.task_reset(goal.task)
        if isinstance(task, str):
            error = task
        if error or not self._busy.acquire(blocking=False):
            goal_handle.abort()
            return ResetCell.Result(success=False, failure_reason=error or 'busy: another reset is running')
        try:
            outcome = self.reset(goal, goal_handle, task)
        except Exception as exc:  # noqa: BLE001 - never a goal ended with no reason; the node lives on
            reason = f'internal error: {type(exc).__name__}: {exc}'
            self.get_logger().error(f'reset failed: {reason}\n{traceback.format_exc()}')
            goal_handle.abort()
            return ResetCell.Result(success=False, failure_reason=reason)
        finally:
            self._busy.release()
        if goal_handle.is_cancel_requested and not outcome.success:
            goal_handle.canceled()
        elif outcome.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return self.to_result(outcome)

    # ---------------------------------------------------------------- the reset
    def routine_spec(self, task: str) -> str:
        """The placement routine of `task`: the config's when it names one, else the task's own."""
        return self.config.routine or task_registry.get(task).reset.placement

    def task_reset(self, name: str) -> TaskReset | str:
        """The task's reset parts (cached), or why the task cannot be reset here."""
        if name not in self._tasks:
            try:
                self._tasks[name] = load_task_reset(name, self.config)
            except (task_registry.UnknownTask, ValueError, ImportError, AttributeError) as exc:
                self._tasks[name] = f'task {name!r} cannot be reset: {exc}'
        return self._tasks[name]

    def reset(self, goal, goal_handle, task: TaskReset) -> ResetOutcome:
        target = task.target(goal.seed, goal.distribution)
        routine = self._routines[self.routine_spec(task.name)]

        def on_phase(phase: str, attempt: int) -> None:
            goal_handle.publish_feedback(ResetCell.Feedback(phase=phase, try_number=attempt))

        def routine_with_baseline(routine):
            class _Wrapped:
                name = routine.name

                def place(_, tgt, attempt):
                    self._baseline = self.frame_stamps(goal.task)   # frames before the placement
                    self.take_states()
                    self._placed_at = time.time()
                    return routine.place(tgt, attempt)
            return _Wrapped()

        outcome = run_reset(target, goal.max_tries, routine_with_baseline(routine),
                            lambda placement: self.observe(goal.task, placement), self.config, task,
                            on_phase=on_phase, cancelled=lambda: goal_handle.is_cancel_requested)
        if outcome.success and task.multi_view:
            self.publish_placed(goal.task, target)
        errors = ', '.join(f'{name} {value:.4g}' for name, value in outcome.errors.items())
        self.get_logger().info(
            f'reset {goal.task} seed={goal.seed} {goal.distribution}: ok={outcome.success} '
            f'tries={outcome.tries_used} errors: {errors} {outcome.failure_reason}')
        return outcome

    def publish_placed(self, task: str, target) -> None:
        """The placed objects' positions (their poses' first three entries) as static frames."""
        frame = task_registry.get(task).action.frame
        msg = TFMessage()
        for obj in target.scene():
            pose = Pose(np.eye(3), np.asarray(obj.pose[:3], dtype=float))
            msg.transforms.append(fill_transform(TransformStamped(), frame, PLACED_PREFIX + obj.name, pose,
                                                 self.get_clock().now().to_msg()))
        self.placed_pub.publish(msg)

    def observe(self, task: str, placement: PlacementOutcome) -> Observation:
        """Settle, then verify until the cameras show frames taken after the placement (or time out)."""
        settled = self.cell_clock.sleep(self.config.settle_time_s)
        if settled.stalled:
            self.get_logger().warning(f'settling: {settled.reason}')
        deadline = self.cell_clock.deadline(self.config.frame_timeout_s)
        multi_view = task_registry.get(task).reset.multi_view
        while True:
            placed_stamp = self.placement_stamp()
            response, error = self.verify(task, locate_scene=multi_view)
            if error:
                return Observation(error=error)
            estimates = tuple(self.estimate(c, placed_stamp) for c in response.verdict.cameras)
            if multi_view:
                # located from every view: all of them must show the scene after the placement
                fresh = all(e.fresh for e in estimates)
                if fresh or deadline.expired() is not None:
                    scene = tuple(response.scene) if fresh and len(response.scene) else None
                    problem = response.scene_problem if fresh else 'a camera has no frame since the placement'
                    return Observation(estimates, response.verdict.evidence_path, scene=scene,
                                       scene_problem=problem)
                time.sleep(0.05)
                continue
            usable = sum(e.usable and e.fresh for e in estimates)
            if usable >= self.config.min_cameras or deadline.expired() is not None:
                return Observation(estimates, response.verdict.evidence_path)
            time.sleep(0.05)

    def estimate(self, verdict: CameraVerdict, placed_stamp: float | None) -> CameraEstimate:
        stamp = _stamp(verdict.frame_stamp)
        fresh = stamp > self._baseline.get(verdict.camera, -math.inf)
        if placed_stamp is not None:
            fresh = fresh and stamp >= placed_stamp
        pose = messages.vector(verdict.estimate)
        return CameraEstimate(verdict.camera, verdict.state != CameraVerdict.UNCERTAIN, pose, fresh,
                              verdict.reason)

    def frame_stamps(self, task: str) -> dict[str, float]:
        """Each camera's frame stamp as verify sees it now (before a placement)."""
        response, error = self.verify(task, save_evidence=False)
        if error:
            return {}
        return {c.camera: _stamp(c.frame_stamp) for c in response.verdict.cameras}

    def placement_stamp(self) -> float | None:
        """Cell time of the first state the cell reported after the placement (step 0), if any."""
        self.take_states()
        with self._state_lock:
            for stamp, step, received in self._states:
                if received >= self._placed_at and step == 0:
                    return stamp
        return None

    def verify(self, task: str, save_evidence: bool | None = None, locate_scene: bool = False):
        if not self.verify_client.wait_for_service(timeout_sec=self.config.service_timeout_s):
            return None, f'service {self.verify_client.srv_name} not available'
        save = self.config.save_evidence if save_evidence is None else save_evidence
        response = self.call(self.verify_client, Verify.Request(task=task, cameras=[], save_evidence=save,
                                                                locate_scene=locate_scene))
        if response is None:
            return None, f'{self.verify_client.srv_name} did not answer'
        if not response.ok:
            return None, f'verify refused: {response.error}'
        return response, ''

    def call(self, client, request):
        """Call a service from an executor thread and wait (bounded on the cell's clock) for the answer;
        None on time-out or a stalled clock."""
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        answered = self.cell_clock.wait_until(done.is_set, self.config.service_timeout_s, poll_s=0.05,
                                              sleep=done.wait)
        if not answered:
            self.get_logger().warning(f'{client.srv_name}: {answered.reason}')
            client.remove_pending_request(future)
            return None
        return future.result()

    def take_states(self) -> None:
        """Remember the cell states received since the last call (to date the placement)."""
        with self._state_lock:
            for msg, info in self.sensors.take('state', with_info=True):
                received = info['received_timestamp'] * 1e-9
                self._states.append((_stamp(msg.header.stamp), int(msg.step), received))
            del self._states[:-50]

    def to_result(self, outcome: ResetOutcome) -> ResetCell.Result:
        result = ResetCell.Result(success=outcome.success, tries_used=outcome.tries_used,
                                  evidence_path=outcome.evidence_path, failure_reason=outcome.failure_reason,
                                  errors=messages.floats(outcome.errors.values()),
                                  error_names=list(outcome.errors))
        if outcome.target is not None:
            result.target_state = messages.floats(target_state(outcome.target))
            result.target_tool = messages.floats(outcome.target.tool())
        if outcome.achieved is not None:
            result.achieved_state = messages.floats(outcome.achieved)
        return result

    def _refuse_parameter_change(self, params) -> SetParametersResult:
        """Refuse every run-time parameter change: the reset configuration is fixed at start-up."""
        return SetParametersResult(successful=False, reason=(
            f'refused: reset parameters ({", ".join(p.name for p in params)}) are read-only at run time; '
            f'the configuration comes from {self.config_file}'))


def main(args=None) -> int:
    return run_node(ResetNode, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
