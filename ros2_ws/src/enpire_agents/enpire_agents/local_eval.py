"""Pure, in-process evaluation of a Push-T policy source: no ROS, no sandbox (a developer's tool).

`evaluate(code, seeds, attempts=8)` runs one rollout per seed with pass@k semantics -- up to
`attempts` attempts of 300 control steps, no reset between attempts, `on_attempt_failed` called after
each failed attempt -- and returns an `EvalResult` (successes at attempt 1 and within k, per-seed
records). Real trials go through ROS (`enpire_rollout`); this is for quick checks and for the offline
backend's own tests.

Simulator: `enpire_sim.pusht_sim.PushTSim` (gym-pusht's dynamics, checked by tests/sim/test_parity.py).
Perception (`perception=`):
- 'camera': render the top camera (`enpire_sim.cameras`) and let the policy call the real
  `enpire_rollout.policy_tools.locate_block` -- ground-truth free;
- 'noisy_gt': a stand-in `locate_block` returning the true pose plus Gaussian noise
  (`noise_px`, `noise_deg`), for when the camera stack is absent;
- 'gt': the exact pose.
`perception='auto'` picks 'camera' when the camera stack and `policy_tools` import, else 'noisy_gt'.

Command line: `python -m enpire_agents.local_eval POLICY.py --seeds 0:100 --attempts 8 --procs 2`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import types
from dataclasses import dataclass, field

import numpy as np

from enpire_env.tasks import pusht
from enpire_env.tasks.pusht_distributions import sample_initial_state
from enpire_rollout.policy_contract import AttemptReport, Observation, TrialContext

EPISODE_STEPS = pusht.EPISODE_STEPS


# ----------------------------------------------------------------------------------------- simulators
class _EnpireSim:
    """The project's own simulator (`enpire_sim.pusht_sim.PushTSim`)."""

    def __init__(self):
        from enpire_sim.pusht_sim import PushTSim
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
        from enpire_sim import cameras
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
    mod = types.ModuleType('enpire_rollout.policy_tools')

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
    import enpire_rollout
    key = 'enpire_rollout.policy_tools'
    saved_mod = sys.modules.get(key)
    had_attr = hasattr(enpire_rollout, 'policy_tools')
    saved_attr = getattr(enpire_rollout, 'policy_tools', None)
    if module is not None:
        sys.modules[key] = module
        enpire_rollout.policy_tools = module
    try:
        yield
    finally:
        if module is not None:
            if saved_mod is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = saved_mod
            if had_attr:
                enpire_rollout.policy_tools = saved_attr
            else:
                with contextlib.suppress(AttributeError):
                    delattr(enpire_rollout, 'policy_tools')


def camera_available() -> bool:
    try:
        import enpire_rollout.policy_tools as tools  # noqa: F401
        from enpire_sim import cameras  # noqa: F401
        from enpire_sim.pusht_sim import PushTSim  # noqa: F401
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
class RolloutRecord:
    seed: int
    success_attempt: int | None          # 1-based attempt of the first success, None if never
    scores: list[float] = field(default_factory=list)   # final coverage of each attempt
    reasons: list[str] = field(default_factory=list)
    steps: int = 0


@dataclass
class EvalResult:
    records: list[RolloutRecord]
    attempts: int
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.records)

    def successes_at(self, k: int) -> int:
        return sum(1 for r in self.records if r.success_attempt is not None and r.success_attempt <= k)

    def pass_at(self, k: int) -> float:
        return self.successes_at(k) / max(1, self.n)

    @property
    def mean_score(self) -> float:
        if not self.records:
            return 0.0
        return float(np.mean([max(r.scores) if r.scores else 0.0 for r in self.records]))

    def failure_reasons(self) -> list[str]:
        from collections import Counter
        c = Counter(reason for r in self.records for reason in r.reasons if reason != 'success')
        return [reason for reason, _ in c.most_common()]

    def summary(self) -> dict:
        return {'n': self.n, 'attempts': self.attempts, 'pass_at_1': self.pass_at(1),
                'pass_at_k': self.pass_at(self.attempts), 'mean_score': round(self.mean_score, 4),
                'failure_reasons': self.failure_reasons()[:5], 'seconds': round(self.seconds, 1),
                'failed_seeds': [r.seed for r in self.records if r.success_attempt is None]}


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


def run_rollout(policy_cls, seed: int, *, attempts: int = 8, distribution: str = 'in_distribution',
                perception: str = 'noisy_gt', noise_px: float = 1.0, noise_deg: float = 0.5,
                sim=None, camera=None, steps_per_attempt: int = EPISODE_STEPS) -> RolloutRecord:
    sim = sim or make_sim()
    state = sample_initial_state(seed, distribution)
    sim.place(state.block, state.agent)
    policy = policy_cls()
    policy.reset(TrialContext(task='pusht', attempts=attempts, steps_per_attempt=steps_per_attempt,
                              control_hz=pusht.CONTROL_HZ, cameras=['top'], seed=seed))
    record = RolloutRecord(seed=seed, success_attempt=None)
    previous: list[AttemptReport] = []
    for attempt in range(1, attempts + 1):
        start_pose = sim.block_pose()
        start_cov = sim.coverage()
        cov, reason, steps = start_cov, '', 0
        for step in range(steps_per_attempt):
            frames, maps, gt = {}, {}, None
            if perception == 'camera':
                frames, maps = camera.frames(sim)
            else:
                gt = {'block': sim.block_pose(), 'coverage': cov}
            obs = Observation(step=step, attempt=attempt, time_s=step / pusht.CONTROL_HZ,
                              agent_position=sim.agent_position(), agent_velocity=sim.agent_velocity(),
                              frames=frames, table_to_image=maps, debug_ground_truth=gt)
            try:
                target = policy.act(obs)
                tx, ty = float(target[0]), float(target[1])
                if not (math.isfinite(tx) and math.isfinite(ty)):
                    raise ValueError('non-finite action')
            except Exception as exc:  # the sandbox would report this as the attempt's reason
                reason = f'exception: {type(exc).__name__}: {exc}'
                break
            tx, ty = min(max(tx, 0.0), pusht.WORKSPACE_SIZE), min(max(ty, 0.0), pusht.WORKSPACE_SIZE)
            cov = sim.step((tx, ty))
            steps = step + 1
            if pusht.is_success(cov):
                reason = 'success'
                break
        record.steps += steps
        record.scores.append(float(cov))
        if reason == 'success':
            record.success_attempt = attempt
            record.reasons.append(reason)
            break
        if not reason:
            end_pose = sim.block_pose()
            moved = np.hypot(end_pose[0] - start_pose[0], end_pose[1] - start_pose[1]) > 1.0 or \
                abs(end_pose[2] - start_pose[2]) > 0.01
            reason = classify_failure(start_cov, cov, pose_error(end_pose), moved)
        record.reasons.append(reason)
        report = AttemptReport(attempt=attempt, score=float(cov), success=False, reason=reason, steps=steps,
                               previous=list(previous))
        previous.append(report)
        try:
            policy.on_attempt_failed(report)
        except Exception:
            pass
    return record


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
    return [run_rollout(policy_cls, s, sim=sim, camera=camera, **kw) for s in seeds]


def evaluate(code: str, seeds, *, attempts: int = 8, distribution: str = 'in_distribution',
             perception: str = 'auto', noise_px: float = 1.0, noise_deg: float = 0.5, procs: int = 1,
             sim: str = 'enpire', steps_per_attempt: int = EPISODE_STEPS,
             camera_resolution: int | None = None) -> EvalResult:
    """Evaluate a policy source on `seeds` (one rollout each) with pass@`attempts` semantics."""
    t0 = time.monotonic()
    seeds = list(seeds)
    perception = _resolve_perception(perception)
    kw = dict(attempts=attempts, distribution=distribution, perception=perception, noise_px=noise_px,
              noise_deg=noise_deg, sim=sim, steps_per_attempt=steps_per_attempt,
              camera_resolution=camera_resolution)
    procs = max(1, min(int(procs), 2, len(seeds)))   # the machine has 2 cores shared by everyone
    if procs == 1:
        records = _worker((code, seeds, dict(kw)))
    else:
        import multiprocessing as mp
        chunks = [seeds[i::procs] for i in range(procs)]
        with mp.get_context('fork').Pool(procs) as pool:
            parts = pool.map(_worker, [(code, c, dict(kw)) for c in chunks])
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
    args = ap.parse_args(argv)
    code = open(args.policy).read()
    res = evaluate(code, _parse_seeds(args.seeds), attempts=args.attempts, distribution=args.distribution,
                   perception=args.perception, procs=args.procs, sim=args.sim,
                   camera_resolution=args.camera_resolution)
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
