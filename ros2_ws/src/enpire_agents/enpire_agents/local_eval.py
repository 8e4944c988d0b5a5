"""Evaluation of a Push-T policy source without the ROS graph, in one of two modes.

`evaluate(code, seeds, attempts=8, mode=...)` runs one rollout per seed with pass@k semantics -- up to
`attempts` attempts of 300 control steps, no reset between attempts, `on_attempt_failed` called after
each failed attempt -- and returns an `EvalResult` (successes at attempt 1 and within k, per-seed
records).

mode='trial' (what a benchmark uses): the trial server's judgement without the graph. `run_trial` is the
loop of `enpire_rollout.trial_server_node.TrialRun` (`_attempts` / `_run_steps`): the policy file runs in
the real sandbox (`enpire_rollout.sandbox.PolicyRunner`, limits from the trial server's config), gets the
frames of every camera of the simulated cell (`enpire_sim.cameras.CameraRig`, the sim cell's cameras),
its commands pass the EN safety core (`enpire_env.safety.SafetyFilter`, as the as-fast safety node does)
into `PushTSim` in lockstep, and each attempt is judged by the EN verifier core
(`enpire_env.verification.Verifier` over the cameras' last frames, the verify node's cameras, fusion rule
and frame age). Its reasons are the verifier's (or the sandbox's); the sim's coverage is never looked at.
Settings come from the packages' config files (`TrialSettings.from_config`). The reset is the sim cell's
placement at `sample_initial_state(seed, distribution)` (the reset server's target), not re-verified.
A `TrialRecorder` sees every event, state, command and verdict (`regimes.sim_bags` writes trial bags).

mode='in_process' (default; a developer's tool, the offline backend's own tests): the policy class is
executed in this process, no sandbox, success from the simulator's coverage; a failed attempt's reason
is classified from the sim's ground truth. Perception (`perception=`):
- 'camera': render the top camera (`enpire_sim.cameras`) and let the policy call the real
  `enpire_task_pusht.policy_tools.locate_block` -- ground-truth free;
- 'noisy_gt': a stand-in `locate_block` returning the true pose plus Gaussian noise
  (`noise_px`, `noise_deg`), for when the camera stack is absent;
- 'gt': the exact pose.
`perception='auto'` picks 'camera' when the camera stack and `policy_tools` import, else 'noisy_gt'.

Simulator: `enpire_task_pusht.simulator.PushTSim` (gym-pusht's dynamics, checked by
tests/tasks/pusht/test_parity.py).

Command line: `python -m enpire_agents.local_eval POLICY.py --seeds 0:100 --attempts 8 --mode trial`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from enpire_task_pusht import geometry as pusht
from enpire_task_pusht.distributions import sample_initial_state

from enpire_rollout import trial_loop
from enpire_rollout.policy_contract import AttemptReport, Observation, TrialContext
from enpire_rollout.trial_loop import TrialPlan, Verdict
from enpire_rollout.trial_outcome import TrialOutcome

if TYPE_CHECKING:
    from enpire_task_pusht.render import CameraSpec

    from enpire_env.safety import SafetyLimits
    from enpire_env.verification import FusedJudgement, VerifyConfig
    from enpire_rollout.sandbox import StepResult
    from enpire_rollout.trial_core import TrialServerConfig

EPISODE_STEPS = pusht.EPISODE_STEPS


# ----------------------------------------------------------------------------------------- simulators
class _EnpireSim:
    """The project's own simulator (`enpire_task_pusht.simulator.PushTSim`)."""

    def __init__(self):
        from enpire_task_pusht.simulator import PushTSim
        self.sim = PushTSim()

    def place(self, block, agent):
        self.sim.place(tuple(block), tuple(agent))

    def step(self, target):
        self.sim.step((float(target[0]), float(target[1])))
        return self.coverage()

    def block_pose(self):
        return tuple(float(v) for v in self.sim.block_pose)

    def agent_position(self):
        return np.asarray(self.sim.agent_position, dtype=float)

    def agent_velocity(self):
        return np.asarray(self.sim.agent_velocity, dtype=float)

    def coverage(self):
        return float(self.sim.coverage())


def make_sim(kind: str = 'enpire'):
    if kind != 'enpire':
        raise ValueError(f'unknown simulator {kind!r}; the evaluator runs enpire_sim')
    return _EnpireSim()


# ----------------------------------------------------------------------------------------- perception
class _Camera:
    """The cell's top camera through `enpire_sim.cameras` (spec from `sim/config/cameras.yaml` if found)."""

    def __init__(self, camera: str = 'top', resolution: int | None = None):
        from enpire_task_pusht import render as cameras
        self.cameras = cameras
        specs = cameras.DEFAULT_CAMERAS
        with contextlib.suppress(Exception):
            from pathlib import Path

            import enpire_sim
            cfg = Path(enpire_sim.__file__).resolve().parent.parent / 'config' / 'cameras.yaml'
            if cfg.exists():
                specs = cameras.load_cameras(cfg)[0]
        spec = next(s for s in specs if s.name == camera)
        if resolution:
            spec = spec.model_copy(update={'width': int(resolution), 'height': int(resolution)})
        self.spec = spec

    def frames(self, sim):
        raw = sim.sim if isinstance(sim, _EnpireSim) else sim
        state = self.cameras.RenderState.from_sim(raw)
        img, h = self.cameras.render(state, self.spec)
        if img is None:
            return {}, {}
        return {self.spec.name: img}, {self.spec.name: h}


def _stand_in_tools(noise_px: float, noise_deg: float, rng: np.random.Generator):
    mod = types.ModuleType('enpire_task_pusht.policy_tools')

    def locate_block(observation):
        gt = observation.debug_ground_truth
        if not gt:
            return None
        x, y, th = gt['block']
        return (x + rng.normal(0, noise_px), y + rng.normal(0, noise_px),
                th + math.radians(rng.normal(0, noise_deg)))

    mod.locate_block = locate_block
    mod.stand_in = True
    return mod


@contextlib.contextmanager
def _policy_tools_as(module):
    import enpire_task_pusht
    key = 'enpire_task_pusht.policy_tools'
    saved_mod = sys.modules.get(key)
    had_attr = hasattr(enpire_task_pusht, 'policy_tools')
    saved_attr = getattr(enpire_task_pusht, 'policy_tools', None)
    if module is not None:
        sys.modules[key] = module
        enpire_task_pusht.policy_tools = module
    try:
        yield
    finally:
        if module is not None:
            if saved_mod is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = saved_mod
            if had_attr:
                enpire_task_pusht.policy_tools = saved_attr
            else:
                with contextlib.suppress(AttributeError):
                    delattr(enpire_task_pusht, 'policy_tools')


def camera_available() -> bool:
    try:
        import enpire_task_pusht.policy_tools as tools  # noqa: F401
        from enpire_task_pusht import render  # noqa: F401
        from enpire_task_pusht.simulator import PushTSim  # noqa: F401
        return hasattr(tools, 'locate_block')
    except Exception:
        return False


def load_policy_class(code: str, tools_module=None):
    """Execute a policy source in a fresh module and return its `Policy` class."""
    mod = types.ModuleType('enpire_policy_under_test')
    with _policy_tools_as(tools_module):
        exec(compile(code, '<policy>', 'exec'), mod.__dict__)
    return mod.Policy


# ----------------------------------------------------------------------------------------- evaluation
@dataclass
class EvalResult:
    records: list[TrialOutcome]
    attempts: int
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.records)

    def successes_at(self, k: int) -> int:
        return sum(1 for r in self.records if r.succeeded_within(k))

    def pass_at(self, k: int) -> float:
        return self.successes_at(k) / max(1, self.n)

    @property
    def mean_score(self) -> float:
        if not self.records:
            return 0.0
        return float(np.mean([r.best_score for r in self.records]))

    def failure_reasons(self) -> list[str]:
        from collections import Counter
        c = Counter(reason for r in self.records for reason in r.attempt_reasons if reason != 'success')
        return [reason for reason, _ in c.most_common()]

    def summary(self) -> dict:
        return {'n': self.n, 'attempts': self.attempts, 'pass_at_1': self.pass_at(1),
                'pass_at_k': self.pass_at(self.attempts), 'mean_score': round(self.mean_score, 4),
                'failure_reasons': self.failure_reasons()[:5], 'seconds': round(self.seconds, 1),
                'failed_seeds': [r.seed for r in self.records if r.first_success is None],
                'missed_deadlines': sum(r.missed_deadlines for r in self.records)}


def classify_failure(start_cov: float, end_cov: float, pose_err: tuple[float, float], moved: bool) -> str:
    """A verdict-like reason for a failed attempt, from the sim's ground truth (dev harness only)."""
    pos, ang = pose_err
    if not moved:
        return 'timeout: no progress (block never moved)'
    if end_cov < start_cov - 0.05:
        return f'timeout: coverage fell {start_cov:.2f}->{end_cov:.2f}'
    if pos <= 4.0 and ang > 2.0:
        return f'timeout: position ok, angle off {ang:.1f} deg (coverage {end_cov:.3f})'
    if ang <= 2.0 and pos > 4.0:
        return f'timeout: angle ok, position off {pos:.1f} px (coverage {end_cov:.3f})'
    if pos <= 4.0 and ang <= 2.0:
        return f'timeout: close but not over the bar (coverage {end_cov:.3f})'
    return f'timeout: far from goal ({pos:.0f} px, {ang:.0f} deg, coverage {end_cov:.3f})'


def pose_error(pose) -> tuple[float, float]:
    c = np.array(pusht.origin_to_centroid(pose))
    g = np.array(pusht.origin_to_centroid(pusht.GOAL_POSE))
    return float(np.linalg.norm(c - g)), abs(math.degrees(pusht.angle_diff(pose[2], pusht.GOAL_POSE[2])))


class InProcessPolicy:
    """A policy class run in this process, as the trial loop drives a sandboxed one: an exception (or a
    non-finite action) ends the attempt with its reason; the policy object lives on."""

    alive = True
    missed_deadlines = 0

    def __init__(self, policy_cls, context: TrialContext):
        self.policy, self.context = policy_cls(), context

    def start(self) -> StepResult:
        from enpire_rollout.sandbox import StepResult
        self.policy.reset(self.context)
        return StepResult(ok=True)

    def act(self, observation: Observation) -> StepResult:
        from enpire_rollout.sandbox import StepResult
        try:
            target = self.policy.act(observation)
            tx, ty = float(target[0]), float(target[1])
            if not (math.isfinite(tx) and math.isfinite(ty)):
                raise ValueError('non-finite action')
        except Exception as exc:  # the sandbox would report this as the attempt's reason
            return StepResult(ok=False, kind='exception', reason=f'exception: {type(exc).__name__}: {exc}')
        return StepResult(ok=True, action=(tx, ty))

    def on_attempt_failed(self, report: AttemptReport) -> StepResult:
        from enpire_rollout.sandbox import StepResult
        with contextlib.suppress(Exception):
            self.policy.on_attempt_failed(report)
        return StepResult(ok=True)

    def restart(self, reports: list[AttemptReport]) -> StepResult:
        raise RuntimeError('an in-process policy never dies')

    def close(self) -> None:
        pass


class InProcessCell:
    """The trial loop's cell on the simulator in this process: success is the simulator's coverage (checked
    after every step), a failed attempt's reason classified from its ground truth."""

    def __init__(self, sim, seed: int, distribution: str, perception: str, camera=None):
        self.sim, self.seed, self.distribution = sim, seed, distribution
        self.perception, self.camera = perception, camera
        self.cov = 0.0
        self.start_pose, self.start_cov = None, 0.0

    def reset(self) -> dict:
        state = sample_initial_state(self.seed, self.distribution)
        self.sim.place(state.block, state.agent)
        self.cov = self.sim.coverage()
        return {}

    def stop_reason(self) -> str:
        return ''

    def begin_attempt(self, attempt: int):
        self.start_pose, self.start_cov = self.sim.block_pose(), self.cov
        return tuple(self.sim.agent_position())

    def observe(self, step: int, attempt: int) -> Observation:
        frames, maps, gt = {}, {}, None
        if self.perception == 'camera':
            frames, maps = self.camera.frames(self.sim)
        else:
            gt = {'block': self.sim.block_pose(), 'coverage': self.cov}
        return Observation(step=step, attempt=attempt, time_s=step / pusht.CONTROL_HZ,
                           agent_position=self.sim.agent_position(), agent_velocity=self.sim.agent_velocity(),
                           frames=frames, table_to_image=maps, debug_ground_truth=gt)

    def command(self, values) -> None:
        tx, ty = (min(max(float(v), 0.0), pusht.WORKSPACE_SIZE) for v in values[:2])
        self.cov = self.sim.step((tx, ty))

    def hold(self) -> None:
        """The simulator stands still between steps: nothing to send."""

    def verify(self, attempt: int, final: bool) -> Verdict:
        if pusht.is_success(self.cov):
            return Verdict(success=True, score=float(self.cov), reason='success')
        if not final:
            return Verdict(success=False, score=float(self.cov))
        end_pose, start_pose = self.sim.block_pose(), self.start_pose
        moved = np.hypot(end_pose[0] - start_pose[0], end_pose[1] - start_pose[1]) > 1.0 or \
            abs(end_pose[2] - start_pose[2]) > 0.01
        reason = classify_failure(self.start_cov, self.cov, pose_error(end_pose), moved)
        return Verdict(success=False, score=float(self.cov), reason=reason)

    def settle(self) -> None:
        pass

    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None:
        pass

    def feedback(self, phase: str, attempt: int = 0, step: int = 0, score: float = 0.0) -> None:
        pass


def run_in_process(policy_cls, seed: int, *, attempts: int = 8, distribution: str = 'in_distribution',
                   perception: str = 'noisy_gt', noise_px: float = 1.0, noise_deg: float = 0.5,
                   sim=None, camera=None, steps_per_attempt: int = EPISODE_STEPS) -> TrialOutcome:
    """One trial of a policy class in this process (no sandbox), through the trial loop."""
    cell = InProcessCell(sim or make_sim(), seed, distribution, perception, camera)
    context = TrialContext(task='pusht', attempts=attempts, steps_per_attempt=steps_per_attempt,
                           control_hz=pusht.CONTROL_HZ, cameras=['top'], seed=seed)
    policy = InProcessPolicy(policy_cls, context)
    plan = TrialPlan(attempts=attempts, steps_per_attempt=steps_per_attempt, time_budget_s=math.inf,
                     verify_every_n_steps=1)
    outcome = TrialOutcome(seed=seed, task='pusht', distribution=distribution, attempts=attempts)
    return trial_loop.run_trial(cell, policy, policy.start, plan, outcome, on_crash=_reraise)


def _reraise(exc: Exception) -> None:
    raise exc


def config_file(package: str, name: str) -> Path:
    """`<share of package>/config/<name>` of the built workspace, else the file in the source tree."""
    with contextlib.suppress(Exception):
        from ament_index_python.packages import get_package_share_directory
        path = Path(get_package_share_directory(package)) / 'config' / name
        if path.exists():
            return path
    import importlib
    return Path(importlib.import_module(package).__file__).resolve().parents[1] / 'config' / name


def ros_parameters(path: str | Path) -> dict:
    """The `/**: ros__parameters:` mapping of a node's parameter file."""
    import yaml
    data = yaml.safe_load(Path(path).read_text()) or {}
    return dict((data.get('/**') or {}).get('ros__parameters') or {})


@dataclass(frozen=True)
class TrialSettings:
    """What the sim bringup runs a trial with: trial server, safety limits, verify node, sim cameras."""

    trial: TrialServerConfig
    safety: SafetyLimits
    verification: VerifyConfig
    verify_cameras: tuple[str, ...]
    fusion_rule: str
    max_frame_age: float
    cameras: tuple[CameraSpec, ...]

    @classmethod
    def from_config(cls) -> TrialSettings:
        """From the packages' config files, as `enpire up sim_cells` starts the nodes."""
        from enpire_task_pusht.render import DEFAULT_CAMERAS, load_cameras

        from enpire_env.safety import SafetyLimits
        from enpire_env.verification import load_config
        from enpire_rollout.trial_core import TrialServerConfig

        trial = ros_parameters(config_file('enpire_rollout', 'trial_server.yaml'))
        known = TrialServerConfig.model_fields
        verify_file = config_file('enpire_env', 'verify.yaml')
        verify = ros_parameters(verify_file)
        cameras_file = ros_parameters(config_file('enpire_sim', 'sim_cell.yaml')).get('cameras_file') or ''
        return cls(
            trial=TrialServerConfig(**{k: v for k, v in trial.items() if k in known}),
            safety=SafetyLimits.from_yaml(config_file('enpire_env', 'safety_limits.yaml')),
            verification=load_config('pusht'),
            verify_cameras=tuple(verify.get('cameras', ('top', 'oblique', 'wrist'))),
            fusion_rule=str(verify.get('fusion_rule', 'unanimous')),
            max_frame_age=float(verify.get('max_frame_age', 0.5)),
            cameras=load_cameras(cameras_file)[0] if cameras_file else DEFAULT_CAMERAS,
        )


@dataclass
class TrialGoal:
    """The fields of a RunTrial goal (what `enpire_rollout.trial_core.validate_goal` checks)."""

    policy_path: str
    policy_sha256: str
    seed: int = 0
    task: str = 'pusht'
    distribution: str = 'in_distribution'
    attempts: int = 8
    steps_per_attempt: int = EPISODE_STEPS
    time_budget_s: float = 0.0


class SimTrialCell:
    """One simulated cell as the trial server sees it over the graph, in lockstep (as-fast pacing).

    A command passes the safety filter (its clock advancing one control period per command, as the
    as-fast safety node's) and steps the sim once; then the cell's state and every camera's frame share
    the new stamp. `verify()` is the verify node's answer on the cameras' latest frames.
    """

    def __init__(self, settings: TrialSettings, faults: dict | None = None, fault_seed: int = 0):
        from enpire_task_pusht.render import CameraRig
        from enpire_task_pusht.simulator import PushTSim

        from enpire_env.safety import SafetyFilter
        from enpire_env.verification import Verifier

        self.settings = settings
        self.sim = PushTSim()
        self.rig = CameraRig(settings.cameras, dict(faults or {}), seed=fault_seed)   # camera -> CameraFaults
        self.safety = SafetyFilter(settings.safety)
        self.verifier = Verifier('pusht', settings.verification)
        self.ticks = 0
        self._safety_clock = 0.0
        self.frames: dict = {}        # camera -> (enpire_sim.cameras.Frame, tick of its capture)

    @property
    def now_s(self) -> float:
        return self.ticks / pusht.CONTROL_HZ

    @property
    def agent(self) -> tuple[float, float]:
        return tuple(float(v) for v in self.sim.agent_position)

    def _publish(self) -> None:
        from enpire_task_pusht.render import RenderState
        for cam, frame in self.rig.capture(RenderState.from_sim(self.sim)).items():
            if frame is None:                      # dropped: the camera's last frame stays the latest
                continue
            last = self.frames.get(cam)
            # a stale camera re-sends the same frame object, with the stamp of its capture
            self.frames[cam] = (frame, last[1] if last is not None and last[0] is frame else self.ticks)
        self.safety.update_agent(*self.agent)

    def place(self, seed: int, distribution: str) -> None:
        """The reset server's target for the seed (`reset.core.pick_target`), placed."""
        state = sample_initial_state(int(seed), distribution)
        self.place_objects(tuple(state.block), tuple(state.agent))

    def place_objects(self, block: tuple[float, float, float], agent: tuple[float, float]) -> None:
        """The sim cell's place_objects service: the scene set, its state and frames published."""
        self.sim.place(tuple(block), tuple(agent))
        self.ticks += 1
        self._publish()

    def command(self, x: float, y: float) -> tuple[float, float] | None:
        """A policy target through the safety filter; the safe command steps the cell (None: no step)."""
        from enpire_common import names
        self._safety_clock += self.settings.safety.control_period
        result = self.safety.filter(x, y, names.TABLE_FRAME, self._safety_clock)
        if result.command is None:
            return None
        self.sim.step(result.command)
        self.ticks += 1
        self._publish()
        return result.command

    def observation(self, step: int, attempt: int, t0_s: float) -> Observation:
        """What the trial server hands the policy: every configured camera's latest frame, proprioception."""
        frames = {c: v for c, v in self.frames.items() if c in self.settings.trial.cameras}
        return Observation(
            step=step, attempt=attempt, time_s=self.now_s - t0_s,
            agent_position=np.array(self.agent),
            agent_velocity=np.array(self.sim.agent_velocity, dtype=float),
            frames={c: f.image for c, (f, _) in frames.items()},
            table_to_image={c: np.asarray(f.table_to_image, dtype=float) for c, (f, _) in frames.items()},
            frame_age_s={c: (self.ticks - tick) / pusht.CONTROL_HZ for c, (_, tick) in frames.items()})

    def verify(self) -> FusedJudgement:
        from enpire_env.verification import Frame
        s = self.settings
        frames = {c: Frame(f.image, f.table_to_image, tick / pusht.CONTROL_HZ)
                  for c, (f, tick) in self.frames.items()}
        fused, _ = self.verifier.verify_frames(frames, cameras=list(s.verify_cameras), now=self.now_s,
                                               rule=s.fusion_rule, max_age=s.max_frame_age, task='pusht')
        return fused


class TrialRecorder:
    """What `run_trial` reports as it goes (what a trial bag records); this one keeps nothing."""

    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None:
        """A trial event (started, reset_done, attempt_started, attempt_verified, finished)."""

    def state(self, cell: SimTrialCell) -> None:
        """The cell's state and frames, after the placement and after every step."""

    def command(self, policy_target: tuple[float, float], safe_target: tuple[float, float] | None) -> None:
        """The policy's target and the safe command the cell got (before the step it causes)."""

    def verdict(self, verdict: FusedJudgement) -> None:
        """Each verdict of the verifier."""


class _SimCellSide:
    """A `SimTrialCell` as the trial loop's cell, reporting to a `TrialRecorder`."""

    def __init__(self, cell: SimTrialCell, recorder: TrialRecorder, goal: TrialGoal):
        self.cell, self.rec, self.goal = cell, recorder, goal
        self.t0 = 0.0

    def reset(self) -> dict:
        self.cell.place(self.goal.seed, self.goal.distribution)
        self.rec.state(self.cell)
        return {'tries': 1}

    def stop_reason(self) -> str:
        return ''

    def begin_attempt(self, attempt: int) -> tuple[float, float]:
        self.t0 = self.cell.now_s
        return self.cell.agent

    def observe(self, step: int, attempt: int) -> Observation:
        return self.cell.observation(step, attempt, self.t0)

    def command(self, values) -> None:
        x, y = float(values[0]), float(values[1])
        self.rec.command((x, y), self.cell.command(x, y))
        self.rec.state(self.cell)

    def hold(self) -> None:
        self.command(self.cell.agent)

    def verify(self, attempt: int, final: bool) -> Verdict:
        verdict = self.cell.verify()
        self.rec.verdict(verdict)
        return Verdict(success=bool(verdict.success), score=float(verdict.score), reason=verdict.reason)

    def settle(self) -> None:
        pass

    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None:
        self.rec.event(name, attempt, score, **detail)

    def feedback(self, phase: str, attempt: int = 0, step: int = 0, score: float = 0.0) -> None:
        pass


def run_trial(goal: TrialGoal, cell: SimTrialCell, recorder: TrialRecorder | None = None) -> TrialOutcome:
    """One trial as the trial server runs it (the same loop): validate, place, k attempts in the sandbox,
    each verified."""
    from enpire_rollout.sandbox import PolicyRunner, SandboxLimits
    from enpire_rollout.trial_core import validate_goal

    cfg = cell.settings.trial
    outcome = TrialOutcome(seed=int(goal.seed), task=goal.task, distribution=goal.distribution,
                           attempts=goal.attempts)
    error = validate_goal(goal, cfg.model_copy(update={'policy_dirs': ['/']}))   # the agent's own files
    if error:
        outcome.failure_reason = f'invalid goal: {error}'
        return outcome
    context = TrialContext(task=goal.task, attempts=goal.attempts, steps_per_attempt=goal.steps_per_attempt,
                           control_hz=cfg.control_hz, cameras=list(cfg.cameras), seed=int(goal.seed))
    limits = SandboxLimits(step_deadline_s=cfg.step_deadline_s, hang_timeout_s=cfg.hang_timeout_s,
                           cpu_s=cfg.policy_cpu_s, memory_mb=cfg.policy_memory_mb)
    runner = PolicyRunner(limits)
    plan = TrialPlan(attempts=goal.attempts, steps_per_attempt=goal.steps_per_attempt,
                     time_budget_s=goal.time_budget_s or cfg.max_time_budget_s,
                     verify_every_n_steps=cfg.verify_every_n_steps)
    side = _SimCellSide(cell, recorder or TrialRecorder(), goal)
    return trial_loop.run_trial(side, runner, lambda: runner.start(goal.policy_path, context), plan, outcome,
                                goal=asdict(goal))


@contextlib.contextmanager
def policy_source_file(code: str, prefix: str = 'enpire_policy_src_'):
    """The policy source as the file a trial goal names, with the content hash the trial server checks."""
    from enpire_rollout.trial_core import sha256_file
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path = Path(tmp) / 'policy.py'
        path.write_text(code)
        yield path, sha256_file(path)


def _trial_worker(args) -> list[TrialOutcome]:
    """Trial mode: the policy source as a file, one fresh simulated cell per seed."""
    code, seeds, kw = args
    settings = TrialSettings.from_config()
    with policy_source_file(code, prefix='enpire_eval_') as (path, sha):
        records = []
        for seed in seeds:
            goal = TrialGoal(policy_path=str(path), policy_sha256=sha, seed=int(seed),
                             attempts=kw['attempts'], distribution=kw['distribution'],
                             steps_per_attempt=kw['steps_per_attempt'])
            record = run_trial(goal, SimTrialCell(settings))
            if record.failure_reason:
                raise ValueError(record.failure_reason)
            records.append(record)
    return records


def _resolve_perception(perception: str) -> str:
    if perception == 'auto':
        return 'camera' if camera_available() else 'noisy_gt'
    return perception


def _worker(args):
    code, seeds, kw = args
    perception = kw['perception']
    rng = np.random.default_rng(kw.pop('noise_seed', 0) + 7919 * (seeds[0] if seeds else 0))
    if perception == 'camera':
        tools = None
        camera = _Camera(resolution=kw.pop('camera_resolution', None))
    else:
        sd = 0.0 if perception == 'gt' else 1.0
        tools = _stand_in_tools(kw.get('noise_px', 1.0) * sd, kw.get('noise_deg', 0.5) * sd, rng)
        camera = None
    sim = make_sim(kw.pop('sim', 'enpire'))
    kw.pop('camera_resolution', None)
    policy_cls = load_policy_class(code, tools)
    return [run_in_process(policy_cls, s, sim=sim, camera=camera, **kw) for s in seeds]


MODES = ('in_process', 'trial')


def evaluate(code: str, seeds, *, attempts: int = 8, distribution: str = 'in_distribution',
             perception: str = 'auto', noise_px: float = 1.0, noise_deg: float = 0.5, procs: int = 1,
             sim: str = 'enpire', steps_per_attempt: int = EPISODE_STEPS,
             camera_resolution: int | None = None, mode: str = 'in_process') -> EvalResult:
    """Evaluate a policy source on `seeds` (one rollout each) with pass@`attempts` semantics.

    mode='trial': sandbox + verifier, as the trial server (`perception`, `noise_*`, `sim` and
    `camera_resolution` do not apply: the cell's cameras are those of its config).
    """
    if mode not in MODES:
        raise ValueError(f'unknown mode {mode!r} (known: {MODES})')
    t0 = time.monotonic()
    seeds = list(seeds)
    if mode == 'trial':
        worker = _trial_worker
        kw = dict(attempts=attempts, distribution=distribution, steps_per_attempt=steps_per_attempt)
    else:
        worker = _worker
        kw = dict(attempts=attempts, distribution=distribution, perception=_resolve_perception(perception),
                  noise_px=noise_px, noise_deg=noise_deg, sim=sim, steps_per_attempt=steps_per_attempt,
                  camera_resolution=camera_resolution)
    procs = max(1, min(int(procs), 2, len(seeds)))   # the machine has 2 cores shared by everyone
    if procs == 1:
        records = worker((code, seeds, dict(kw)))
    else:
        import multiprocessing as mp
        chunks = [seeds[i::procs] for i in range(procs)]
        with mp.get_context('fork').Pool(procs) as pool:
            parts = pool.map(worker, [(code, c, dict(kw)) for c in chunks])
        by_seed = {r.seed: r for part in parts for r in part}
        records = [by_seed[s] for s in seeds]
    return EvalResult(records=records, attempts=attempts, seconds=time.monotonic() - t0)


def _parse_seeds(text: str) -> list[int]:
    if ':' in text:
        a, b = text.split(':')
        return list(range(int(a), int(b)))
    return [int(s) for s in text.split(',')]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('policy', help='policy source file')
    ap.add_argument('--seeds', default='0:20')
    ap.add_argument('--attempts', type=int, default=8)
    ap.add_argument('--distribution', default='in_distribution')
    ap.add_argument('--perception', default='auto', choices=['auto', 'camera', 'noisy_gt', 'gt'])
    ap.add_argument('--procs', type=int, default=1)
    ap.add_argument('--sim', default='enpire', choices=['enpire'])
    ap.add_argument('--camera-resolution', type=int, default=None, help='override the top camera size')
    ap.add_argument('--mode', default='in_process', choices=MODES,
                    help='trial: sandbox + verifier, as the trial server judges')
    args = ap.parse_args(argv)
    code = open(args.policy).read()
    res = evaluate(code, _parse_seeds(args.seeds), attempts=args.attempts, distribution=args.distribution,
                   perception=args.perception, procs=args.procs, sim=args.sim,
                   camera_resolution=args.camera_resolution, mode=args.mode)
    print(json.dumps(res.summary()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())


# ----------------------------------------------------------------------------------------- search loop
def summarise(node_id: str, hypothesis: str, result: EvalResult):
    """An `EvalResult` as the backends' `TrialSummary`."""
    from enpire_agents.backends.base import TrialSummary
    return TrialSummary(node_id=node_id, hypothesis=hypothesis, trials=result.n,
                        successes_at_1=result.successes_at(1),
                        successes_at_k=result.successes_at(result.attempts),
                        mean_score=result.mean_score, failure_reasons=result.failure_reasons()[:8])


def run_search(backend, *, rounds: int, seeds, attempts: int = 8, perception: str = 'noisy_gt',
               procs: int = 1, agent_id: str = 'agent_0', time_budget_s: float | None = None,
               stop_at: tuple[float, float] | None = None, seed: int = 0, log=None) -> dict:
    """A one-agent improvement loop in-process: propose -> evaluate on `seeds` -> keep the best.

    Returns {'best_code', 'best', 'rounds': [per-round dicts], 'evaluations', 'seconds'}.
    """
    from enpire_agents.backends.base import ImprovementRequest
    from enpire_agents.backends.offline import rate
    from enpire_rollout import policy_contract
    t0 = time.monotonic()
    best, best_code, history, out = None, None, [], []
    for rnd in range(rounds):
        if time_budget_s is not None and time.monotonic() - t0 > time_budget_s:
            break
        req = ImprovementRequest(task='pusht', contract=policy_contract.__doc__ or '', agent_id=agent_id,
                                 round=rnd, best_code=best_code, best=best, history=history[-5:], seed=seed)
        prop = backend.propose(req)
        res = evaluate(prop.code, seeds, attempts=attempts, perception=perception, procs=procs)
        summary = summarise(f'{agent_id}-r{rnd}', prop.hypothesis, res)
        history.append(summary)
        improved = rate(summary) > rate(best)
        if improved:
            best, best_code = summary, prop.code
        row = {'round': rnd, 'hypothesis': prop.hypothesis, 'pass_at_1': res.pass_at(1),
               'pass_at_k': res.pass_at(attempts), 'mean_score': round(res.mean_score, 4), 'kept': improved,
               'best_pass_at_1': best.successes_at_1 / best.trials,
               'best_pass_at_k': best.successes_at_k / best.trials,
               'elapsed_s': round(time.monotonic() - t0, 1)}
        out.append(row)
        if log:
            log(row)
        if stop_at and row['best_pass_at_1'] >= stop_at[0] and row['best_pass_at_k'] >= stop_at[1]:
            break
    return {'best_code': best_code, 'best': best, 'rounds': out, 'evaluations': len(out),
            'seconds': time.monotonic() - t0}
