"""Trial bags from simulated trials without the ROS graph: the trial server's bag layout (pure).

`record_rollout(code, seed, bag_root)` runs one trial of a policy source with `local_eval.run_trial` --
the trial server's loop: the policy in the real sandbox, its commands through the safety filter into
the task's simulator, every attempt judged by the verifier core on the simulated cameras -- and writes a
`TrialBag` at `<bag_root>/<cell>/<trial_id>/` (where the sim bringup's trial server writes them) with
the topics and messages the ROS trial server records: `/<cell>/cell_state` (CellState, with the safe
command the cell tracked in `commanded`), the recorded cameras' images and homographies (same
stamp as the state), `cmd/policy_target` and `cmd/target` (the safety filter's command), trial events
(`started`, `reset_done`, `attempt_started`, `attempt_verified` with steps/score/success, `finished`),
the verifier's FusedVerdict of every attempt and `/trial/metadata` (seed, policy_sha256,
policy_source, ...). Stamps are sim time (start + 0.1 s per control step), as the sim cell stamps them.
With `debug_ground_truth` the bag also holds `/<cell>/privileged/ground_truth` (for the dataset's named
debug variant only).

It lets the learning regimes be developed and benchmarked on the same files a real cell produces; real
trial bags (from `enpire_rollout.trial_server_node`) are read by `dataset.py` the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from enpire_common import names

from enpire_agents.local_eval import (
    SimTrialCell,
    TrialGoal,
    TrialRecorder,
    TrialSettings,
    policy_source_file,
    run_trial,
)
from enpire_rollout.trial_outcome import TrialOutcome

GT_TOPIC = names.GROUND_TRUTH
TICK_NS = 100_000_000  # one control step of sim time


class BagRecorder(TrialRecorder):
    """Writes what `run_trial` reports into a TrialBag, as the trial server records the graph."""

    def __init__(self, bag, cell: SimTrialCell, cameras, debug_ground_truth: bool = False):
        self.task = cell.task.name
        from enpire_rollout.trial_bag import typestore

        self.bag = bag
        self.cell = cell
        self.cameras = list(cameras)
        self.debug_ground_truth = debug_ground_truth
        self.T = typestore().types
        self.t0 = time.time_ns()
        self._tick, self._sub = -1, 0

    def _ns(self, tick: int | None = None) -> int:
        """Sim time of the cell's tick; messages after the tick's state follow it by 1 ms each."""
        if tick is not None:
            return self.t0 + tick * TICK_NS
        if self.cell.ticks != self._tick:
            self._tick, self._sub = self.cell.ticks, 0
        self._sub += 1
        return self.t0 + self.cell.ticks * TICK_NS + self._sub * 1_000_000

    def _header(self, ns: int, frame_id: str = names.TABLE_FRAME):
        sec, nanosec = divmod(int(ns), 1_000_000_000)
        stamp = self.T['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec)
        return self.T['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)

    def _vector3(self, kind: str, values=()):
        """A geometry_msgs Point or Vector3 of up to 3 coordinates (the rest 0)."""
        x, y, z = (*(float(v) for v in values), 0.0, 0.0, 0.0)[:3]
        return self.T[f'geometry_msgs/msg/{kind}'](x=x, y=y, z=z)

    @staticmethod
    def _floats(values):
        return np.asarray([float(v) for v in values], dtype=np.float64)

    def _cell_state(self, ns: int, sim):
        """The simulated cell's CellState, as the sim cell node publishes it: no joints, the tool's pose
        (identity orientation) and velocity, the tracked command, no task state (the cell measures none)."""
        T, empty = self.T, np.zeros(0, dtype=np.float64)
        return T['enpire_interfaces/msg/CellState'](
            header=self._header(ns),
            step=int(sim.step_count),
            joints=T['sensor_msgs/msg/JointState'](header=self._header(ns), name=[], position=empty,
                                                   velocity=empty, effort=empty),
            tool_pose=T['geometry_msgs/msg/Pose'](
                position=self._vector3('Point', sim.tool_position),
                orientation=T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)),
            tool_velocity=T['geometry_msgs/msg/Twist'](linear=self._vector3('Vector3', sim.tool_velocity),
                                                       angular=self._vector3('Vector3')),
            commanded=self._floats(sim.target),
            task_state=empty,
        )

    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None:
        ns = self._ns()
        msg = self.T['enpire_interfaces/msg/TrialEvent'](
            header=self._header(ns),
            trial_id=self.bag.trial_id,
            event=name,
            attempt=int(attempt),
            score=float(score),
            detail=json.dumps(detail, default=str),
        )
        self.bag.write_msg(self.bag.topic(names.TRIAL_EVENTS), msg, ns)
        self.bag.flush()

    def state(self, cell: SimTrialCell) -> None:
        T, sim = self.T, cell.sim
        ns = self._ns(cell.ticks)
        msg = self._cell_state(ns, sim)
        self.bag.write_msg(self.bag.topic(names.CELL_STATE), msg, ns)
        for cam in self.cameras:
            if cam not in cell.frames:
                continue
            frame, tick = cell.frames[cam]
            if tick != cell.ticks:  # a stale or dropped camera: its frame was recorded when captured
                continue
            h, w = frame.image.shape[:2]
            image = T['sensor_msgs/msg/Image'](
                header=self._header(ns, names.camera_frame(cam)),
                height=h,
                width=w,
                encoding='rgb8',
                is_bigendian=0,
                step=w * 3,
                data=np.ascontiguousarray(frame.image, dtype=np.uint8).reshape(-1),
            )
            self.bag.write_msg(self.bag.topic(names.camera_image(cam)), image, ns)
            homography = T['enpire_interfaces/msg/TableHomography'](
                header=self._header(ns, names.camera_frame(cam)),
                table_to_image=np.asarray(frame.table_to_image, dtype=np.float64).reshape(9),
            )
            self.bag.write_msg(self.bag.topic(names.camera_homography(cam)), homography, ns)
        if self.debug_ground_truth:
            task_state = sim.task_state()
            score, success = cell.task.load('success_rule')(task_state)   # the task's own rule
            truth = T['enpire_interfaces/msg/GroundTruth'](
                header=self._header(ns),
                step=int(sim.step_count),
                task_state=self._floats(task_state),
                tool=self._floats(sim.tool_position),
                score=float(score),
                success=bool(success),
            )
            self.bag.write_msg(self.bag.topic(GT_TOPIC), truth, ns)

    def command(self, policy_target, safe_target) -> None:
        for topic, point in ((names.POLICY_COMMAND, policy_target), (names.CELL_COMMAND, safe_target)):
            if point is None:
                continue
            ns = self._ns()
            msg = self.T['enpire_interfaces/msg/Command'](header=self._header(ns), values=self._floats(point))
            self.bag.write_msg(self.bag.topic(topic), msg, ns)

    def verdict(self, verdict) -> None:
        ns = self._ns()
        msg = self.T['enpire_interfaces/msg/FusedVerdict'](
            header=self._header(ns),
            task=self.task,
            state=int(verdict.state),
            success=bool(verdict.success),
            score=float(verdict.score),
            confidence=float(verdict.confidence),
            rule=verdict.rule,
            reason=verdict.reason,
            cameras=[],
            evidence_path='',
        )
        self.bag.write_msg(self.bag.topic('trial/verdicts'), msg, ns)


def record_rollouts(
    code: str,
    seeds,
    bag_root: str | Path,
    *,
    attempts: int = 2,
    cell: str = 'cell_0',
    distribution: str = 'in_distribution',
    steps_per_attempt: int = 0,
    debug_ground_truth: bool = False,
    cameras=('top',),
    settings: TrialSettings | None = None,
) -> list[TrialOutcome]:
    """One recorded trial of `code` per seed (the source written once as the trials' policy file), of the
    settings' task (default: the one installed task) for `steps_per_attempt` (0: the task's episode)."""
    settings = settings or TrialSettings.from_config()
    with policy_source_file(code) as (path, sha):
        out = []
        for seed in seeds:
            goal = TrialGoal(
                policy_path=str(path),
                policy_sha256=sha,
                seed=int(seed),
                task=settings.task,
                distribution=distribution,
                attempts=attempts,
                steps_per_attempt=steps_per_attempt,
            )
            out.append(_record(goal, code, bag_root, cell, cameras, debug_ground_truth, settings))
        return out


def record_rollout(code: str, seed: int, bag_root: str | Path, **kw) -> TrialOutcome:
    """`record_rollouts` for one seed."""
    return record_rollouts(code, [seed], bag_root, **kw)[0]


def _record(goal: TrialGoal, code: str, bag_root, cell: str, cameras, debug_ground_truth: bool,
            settings: TrialSettings) -> TrialOutcome:
    from enpire_rollout.trial_bag import TrialBag, TrialRecordConfig

    trial_id = f'sim_{goal.policy_sha256[:8]}_s{goal.seed}_{time.time_ns() % 10**9:09d}'
    metadata = {
        'trial_id': trial_id,
        'task': goal.task,
        'policy_path': goal.policy_path,
        'policy_sha256': goal.policy_sha256,
        'seed': goal.seed,
        'distribution': goal.distribution,
        'attempts': goal.attempts,
        'steps_per_attempt': goal.steps_per_attempt,
        'cell': cell,
        'policy_source': code,
        'recorder': 'enpire_agents.regimes.sim_bags',
        'config': settings.trial.model_dump(),
        'started_unix': time.time(),
    }
    bag = TrialBag(Path(bag_root) / cell, trial_id, cell, metadata,
                   TrialRecordConfig(cameras=list(cameras), flush_period_s=5.0))
    bag.open()
    sim_cell = SimTrialCell(settings)
    outcome = None
    try:
        outcome = run_trial(goal, sim_cell, BagRecorder(bag, sim_cell, cameras, debug_ground_truth))
    finally:
        ok = outcome is not None and not outcome.failure_reason
        summary = {} if outcome is None else {
            'success': outcome.success,
            'attempts_used': outcome.attempts_used,
            'attempt_scores': list(outcome.attempt_scores),
            'attempt_reasons': list(outcome.attempt_reasons),
            'failure_reason': outcome.failure_reason,
        }
        bag.close('finished' if ok else 'failed', summary)
    if outcome.failure_reason:
        raise ValueError(outcome.failure_reason)
    return outcome.model_copy(update={'cell': cell, 'bag_path': str(bag.path)})


__all__ = ['record_rollout', 'record_rollouts', 'BagRecorder', 'GT_TOPIC']
