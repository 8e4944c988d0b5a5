"""Evaluation of a policy source without the ROS graph, through the one trial loop, in one of two modes.

`evaluate(code, seeds, attempts=8, mode=..., task=...)` runs one trial per seed with pass@k semantics --
up to `attempts` attempts of the task's episode, no reset between attempts, `on_attempt_failed` called
after each failed attempt -- and returns an `EvalResult` (per-seed `TrialOutcome`s). The task defaults to
the one installed task (`enpire_common.task_registry`).

mode='trial' (what a benchmark uses): the trial server's judgement without the graph. `run_trial` runs
`enpire_rollout.trial_loop` as the trial server does: the policy file in the real sandbox
(`enpire_rollout.sandbox.PolicyRunner`, limits from the trial server's config), the frames of every
camera of the simulated cell (the task's simulator under `enpire_sim.cameras.CameraRig`, the sim cell's
cameras), its commands through the EN safety core (`enpire_env.safety.SafetyFilter`, as the as-fast
safety node does) into the simulator in lockstep, each attempt judged by the EN verifier core
(`enpire_env.verification.Verifier` over the cameras' last frames, the verify node's cameras, fusion rule
and frame age). Its reasons are the verifier's (or the sandbox's); the simulator's truth is never looked
at. Settings come from the packages' config files (`TrialSettings.from_config`). The reset is the sim
cell's placement of the task's initial state for the seed (the reset server's target), not re-verified.
A `TrialRecorder` sees every event, state, command and verdict (`regimes.sim_bags` writes trial bags).

mode='in_process' (default; a developer's tool, the offline backend's own tests): the policy class is
executed in this process, no sandbox, on the task's in-process harness (`Task.in_process`: its cell,
its perception modes, success and failure reasons from its simulator's truth).

Command line: `python -m enpire_agents.local_eval POLICY.py --seeds 0:100 --attempts 8 --mode trial`.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import sys
import tempfile
import time
import types
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from enpire_common import task_registry
from enpire_common.task import SceneObject, Task

from enpire_rollout import trial_loop
from enpire_rollout.policy_contract import AttemptReport, Observation, TrialContext
from enpire_rollout.policy_runtime import action_values, trial_context
from enpire_rollout.trial_loop import TrialPlan, Verdict
from enpire_rollout.trial_outcome import TrialOutcome

if TYPE_CHECKING:
    from enpire_env.safety import SafetyLimits
    from enpire_env.verification import FusedJudgement, VerifyConfig
    from enpire_rollout.sandbox import StepResult
    from enpire_rollout.trial_core import TrialServerConfig
    from enpire_sim.cameras import CameraSpec

def _task(name: str | None) -> Task:
    """The task evaluated: `name`, or the one installed task."""
    return task_registry.get(name or task_registry.sole())


@contextlib.contextmanager
def _policy_tools_as(module):
    """`module` (a harness's stand-in, or None: the real one) importable under its own name meanwhile."""
    if module is None:
        yield
        return
    import importlib
    key = module.__name__
    parent_name, _, attr = key.rpartition('.')
    parent = importlib.import_module(parent_name) if parent_name else None
    saved_mod = sys.modules.get(key)
    had_attr = parent is not None and hasattr(parent, attr)
    saved_attr = getattr(parent, attr, None)
    sys.modules[key] = module
    if parent is not None:
        setattr(parent, attr, module)
    try:
        yield
    finally:
        if saved_mod is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = saved_mod
        if had_attr:
            setattr(parent, attr, saved_attr)
        elif parent is not None:
            with contextlib.suppress(AttributeError):
                delattr(parent, attr)


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
            action = action_values(self.policy.act(observation), self.context.action_size)
        except Exception as exc:  # the sandbox would report this as the attempt's reason
            return StepResult(ok=False, kind='exception', reason=f'exception: {type(exc).__name__}: {exc}')
        return StepResult(ok=True, action=action)

    def on_attempt_failed(self, report: AttemptReport) -> StepResult:
        from enpire_rollout.sandbox import StepResult
        with contextlib.suppress(Exception):
            self.policy.on_attempt_failed(report)
        return StepResult(ok=True)

    def restart(self, reports: list[AttemptReport]) -> StepResult:
        raise RuntimeError('an in-process policy never dies')

    def close(self) -> None:
        pass


class _HarnessCell:
    """A task harness's in-process cell (`Task.in_process`) as the trial loop's cell: the simulator stands
    still between steps (a hold sends nothing), its verdict comes from its own truth."""

    def __init__(self, cell):
        self.cell = cell

    def reset(self) -> dict:
        return self.cell.reset()

    def stop_reason(self) -> str:
        return ''

    def begin_attempt(self, attempt: int):
        return self.cell.begin_attempt(attempt)

    def observe(self, step: int, attempt: int) -> Observation:
        return Observation(**self.cell.observe(step, attempt))

    def command(self, values) -> None:
        self.cell.command(values)

    def hold(self) -> None:
        pass

    def verify(self, attempt: int, final: bool) -> Verdict:
        success, score, reason = self.cell.judge(final)
        return Verdict(success=success, score=score, reason=reason)

    def settle(self) -> None:
        pass

    def event(self, name: str, attempt: int = 0, score: float = 0.0, **detail) -> None:
        pass

    def feedback(self, phase: str, attempt: int = 0, step: int = 0, score: float = 0.0) -> None:
        pass


def run_in_process(policy_cls, seed: int, cell, *, task: Task, attempts: int = 8,
                   distribution: str = 'in_distribution', steps_per_attempt: int | None = None,
                   cameras=()) -> TrialOutcome:
    """One trial of a policy class on a task harness's cell in this process (no sandbox), through the trial
    loop; the cell's verdict is checked after every step."""
    steps_per_attempt = steps_per_attempt or task.episode_steps
    context = trial_context(task.name, attempts=attempts, steps_per_attempt=steps_per_attempt,
                            control_hz=task.control_hz, cameras=list(cameras), seed=seed)
    policy = InProcessPolicy(policy_cls, context)
    plan = TrialPlan(attempts=attempts, steps_per_attempt=steps_per_attempt, time_budget_s=math.inf,
                     verify_every_n_steps=1)
    outcome = TrialOutcome(seed=seed, task=task.name, distribution=distribution, attempts=attempts)
    return trial_loop.run_trial(_HarnessCell(cell), policy, policy.start, plan, outcome, on_crash=_reraise)


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

    task: str
    trial: TrialServerConfig
    safety: SafetyLimits
    verification: VerifyConfig
    verify_cameras: tuple[str, ...]
    fusion_rule: str
    max_frame_age: float
    cameras: tuple[CameraSpec, ...]

    @classmethod
    def from_config(cls, task: str | None = None) -> TrialSettings:
        """From the packages' config files, as `enpire up sim_cells` starts the nodes for `task` (default:
        the one installed task)."""
        from enpire_env.safety import SafetyLimits
        from enpire_env.verification import load_config
        from enpire_rollout.trial_core import TrialServerConfig
        from enpire_sim.cameras import DEFAULT_CAMERAS, load_cameras

        task = _task(task).name

        trial = ros_parameters(config_file('enpire_rollout', 'trial_server.yaml'))
        known = TrialServerConfig.model_fields
        verify_file = config_file('enpire_env', 'verify.yaml')
        verify = ros_parameters(verify_file)
        cameras_file = ros_parameters(config_file('enpire_sim', 'sim_cell.yaml')).get('cameras_file') or ''
        return cls(
            task=task,
            trial=TrialServerConfig(**{k: v for k, v in trial.items() if k in known}),
            safety=SafetyLimits.from_yaml(task_registry.get(task).load('safety_limits')()),
            verification=load_config(task),
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
    task: str = field(default_factory=task_registry.sole)     # default: the one installed task
    distribution: str = 'in_distribution'
    attempts: int = 8
    steps_per_attempt: int = 0                                # 0: the task's episode
    time_budget_s: float = 0.0

    def __post_init__(self):
        self.steps_per_attempt = self.steps_per_attempt or task_registry.get(self.task).episode_steps


class SimTrialCell:
    """One simulated cell as the trial server sees it over the graph, in lockstep (as-fast pacing).

    A command passes the safety filter (its clock advancing one control period per command, as the
    as-fast safety node's) and steps the sim once; then the cell's state and every camera's frame share
    the new stamp. `verify()` is the verify node's answer on the cameras' latest frames.
    """

    def __init__(self, settings: TrialSettings, faults: dict | None = None, fault_seed: int = 0):
        from enpire_env.safety import SafetyFilter
        from enpire_env.verification import Verifier
        from enpire_sim.cameras import CameraRig
        from enpire_sim.simulator import SelfRenderingSimulator

        self.settings = settings
        self.task = task_registry.get(settings.task)
        self.sim = self.task.load('simulator')()       # an enpire_sim.simulator.CellSimulator
        if isinstance(self.sim, SelfRenderingSimulator):
            getattr(self.sim, 'close', lambda: None)()
            raise ValueError(
                f"local evaluation's trial mode steps a table cell under a camera rig; task "
                f"{settings.task!r}'s cell renders its own cameras in 3-D: judge it through run_trial on its "
                "simulated cell (enpire up, the demo), or with mode='in_process'")
        self.rig = CameraRig(settings.cameras, dict(faults or {}), seed=fault_seed,   # camera -> CameraFaults
                             scene=self.sim.scene)
        self.safety = SafetyFilter(settings.safety)
        self.verifier = Verifier(self.task.name, settings.verification)
        self.ticks = 0
        self._safety_clock = 0.0
        self.frames: dict = {}        # camera -> (enpire_sim.cameras.Frame, tick of its capture)

    @property
    def now_s(self) -> float:
        return self.ticks / self.task.control_hz

    @property
    def agent(self) -> tuple[float, float]:
        return tuple(float(v) for v in self.sim.tool_position)

    def _publish(self) -> None:
        for cam, frame in self.rig.capture(self.sim.view()).items():
            if frame is None:                      # dropped: the camera's last frame stays the latest
                continue
            last = self.frames.get(cam)
            # a stale camera re-sends the same frame object, with the stamp of its capture
            self.frames[cam] = (frame, last[1] if last is not None and last[0] is frame else self.ticks)
        self.safety.update_agent(self.agent)

    def place(self, seed: int, distribution: str) -> None:
        """The reset server's target for the seed (the task's initial state), placed."""
        initial = self.task.load('sample_initial_state')(int(seed), distribution)
        self.place_objects(initial.scene(), initial.tool())

    def place_objects(self, objects: Sequence[SceneObject], tool: Sequence[float]) -> None:
        """The sim cell's place_objects service: the scene set, its state and frames published."""
        self.sim.place_objects(tuple(objects), tuple(tool))
        self.ticks += 1
        self._publish()

    def command(self, x: float, y: float) -> tuple[float, float] | None:
        """A policy target through the safety filter; the safe command steps the cell (None: no step)."""
        from enpire_common import names
        self._safety_clock += self.settings.safety.control_period
        result = self.safety.filter((x, y), names.TABLE_FRAME, self._safety_clock)
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
            agent_velocity=np.array(self.sim.tool_velocity, dtype=float),
            frames={c: f.image for c, (f, _) in frames.items()},
            table_to_image={c: np.asarray(f.table_to_image, dtype=float) for c, (f, _) in frames.items()},
            frame_age_s={c: (self.ticks - tick) / self.task.control_hz for c, (_, tick) in frames.items()})

    def verify(self) -> FusedJudgement:
        from enpire_env.verification import Frame
        s = self.settings
        frames = {c: Frame(f.image, f.table_to_image, tick / self.task.control_hz)
                  for c, (f, tick) in self.frames.items()}
        fused, _ = self.verifier.verify_frames(frames, cameras=list(s.verify_cameras), now=self.now_s,
                                               rule=s.fusion_rule, max_age=s.max_frame_age,
                                               task=self.task.name)
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
    context = trial_context(goal.task, attempts=goal.attempts, steps_per_attempt=goal.steps_per_attempt,
                            control_hz=cfg.control_hz, cameras=list(cfg.cameras), seed=int(goal.seed))
    limits = SandboxLimits(step_deadline_s=cfg.step_deadline_s, hang_timeout_s=cfg.hang_timeout_s,
                           cpu_s=cfg.policy_cpu_s, memory_mb=cfg.policy_memory_mb)
    runner = PolicyRunner(limits)
    plan = TrialPlan(attempts=goal.attempts, steps_per_attempt=goal.steps_per_attempt,
                     time_budget_s=goal.time_budget_s or cfg.max_time_budget_s,
                     verify_every_n_steps=cfg.verify_every_n_steps)
    side = _SimCellSide(cell, recorder or TrialRecorder(), goal)
    # The budget on the cell's sim time, as the trial server counts it under use_sim_time.
    return trial_loop.run_trial(side, runner, lambda: runner.start(goal.policy_path, context), plan, outcome,
                                goal=asdict(goal), clock=lambda: cell.now_s)


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
    settings = TrialSettings.from_config(kw['task'])
    with policy_source_file(code, prefix='enpire_eval_') as (path, sha):
        records = []
        for seed in seeds:
            goal = TrialGoal(policy_path=str(path), policy_sha256=sha, seed=int(seed), task=kw['task'],
                             attempts=kw['attempts'], distribution=kw['distribution'],
                             steps_per_attempt=kw['steps_per_attempt'])
            record = run_trial(goal, SimTrialCell(settings))
            if record.failure_reason:
                raise ValueError(record.failure_reason)
            records.append(record)
    return records


def in_process_harness(task: Task, perception: str, **options):
    """The task's harness for evaluating a policy class in this process (`Task.in_process`), given the
    options its signature takes (a task's perception has its own knobs: noise in px, in metres, ...)."""
    if task.in_process is None:
        raise ValueError(f'task {task.name!r} has no in-process harness: use mode="trial"')
    harness = task.load('in_process')
    taken = inspect.signature(harness).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in taken.values()):
        options = {k: v for k, v in options.items() if k in taken}
    return harness(perception, **options)


def _worker(args):
    code, seeds, kw = args
    task = _task(kw.pop('task'))
    rng = np.random.default_rng(kw.pop('noise_seed', 0) + 7919 * (seeds[0] if seeds else 0))
    harness = in_process_harness(task, kw.pop('perception'), noise_px=kw.pop('noise_px'),
                                 noise_deg=kw.pop('noise_deg'), rng=rng,
                                 camera_resolution=kw.pop('camera_resolution'))
    policy_cls = load_policy_class(code, harness.policy_tools)
    return [run_in_process(policy_cls, s, harness.cell(s, kw['distribution']), task=task,
                           cameras=harness.cameras, **kw) for s in seeds]


MODES = ('in_process', 'trial')


def evaluate(code: str, seeds, *, attempts: int = 8, distribution: str = 'in_distribution',
             perception: str = 'auto', noise_px: float = 1.0, noise_deg: float = 0.5, procs: int = 1,
             steps_per_attempt: int | None = None, camera_resolution: int | None = None,
             mode: str = 'in_process', task: str | None = None) -> EvalResult:
    """Evaluate a policy source on `seeds` (one rollout each) with pass@`attempts` semantics, on `task`
    (default: the one installed task) for `steps_per_attempt` (default: the task's episode) per attempt.

    mode='trial': sandbox + verifier, as the trial server (`perception`, `noise_*` and `camera_resolution`
    do not apply: the cell's cameras are those of its config).
    """
    if mode not in MODES:
        raise ValueError(f'unknown mode {mode!r} (known: {MODES})')
    t0 = time.monotonic()
    seeds = list(seeds)
    task_name = _task(task).name
    steps_per_attempt = steps_per_attempt or _task(task).episode_steps
    if mode == 'trial':
        worker = _trial_worker
        kw = dict(attempts=attempts, distribution=distribution, steps_per_attempt=steps_per_attempt,
                  task=task_name)
    else:
        worker = _worker
        kw = dict(attempts=attempts, distribution=distribution, perception=perception, noise_px=noise_px,
                  noise_deg=noise_deg, steps_per_attempt=steps_per_attempt,
                  camera_resolution=camera_resolution, task=task_name)
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
    ap.add_argument('--task', default=None, help='an installed task (default: the one installed)')
    ap.add_argument('--perception', default='auto', help="the task's in-process perception (auto, ...)")
    ap.add_argument('--procs', type=int, default=1)
    ap.add_argument('--camera-resolution', type=int, default=None, help='override the top camera size')
    ap.add_argument('--mode', default='in_process', choices=MODES,
                    help='trial: sandbox + verifier, as the trial server judges')
    args = ap.parse_args(argv)
    code = open(args.policy).read()
    res = evaluate(code, _parse_seeds(args.seeds), attempts=args.attempts, distribution=args.distribution,
                   perception=args.perception, procs=args.procs, task=args.task,
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
               stop_at: tuple[float, float] | None = None, seed: int = 0, log=None,
               task: str | None = None) -> dict:
    """A one-agent improvement loop in-process: propose -> evaluate on `seeds` -> keep the best.

    Returns {'best_code', 'best', 'rounds': [per-round dicts], 'evaluations', 'seconds'}.
    """
    from enpire_agents.backends.base import ImprovementRequest
    from enpire_agents.backends.offline import rate
    from enpire_rollout import policy_contract
    t0 = time.monotonic()
    task = _task(task).name
    best, best_code, history, out = None, None, [], []
    for rnd in range(rounds):
        if time_budget_s is not None and time.monotonic() - t0 > time_budget_s:
            break
        req = ImprovementRequest(task=task, contract=policy_contract.__doc__ or '', agent_id=agent_id,
                                 round=rnd, best_code=best_code, best=best, history=history[-5:], seed=seed)
        prop = backend.propose(req)
        res = evaluate(prop.code, seeds, attempts=attempts, perception=perception, procs=procs, task=task)
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
