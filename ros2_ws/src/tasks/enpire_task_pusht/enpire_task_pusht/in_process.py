"""Push-T evaluated in one process (a developer's harness, `Task.in_process`): the cell local evaluation's
trial loop drives on `PushTSim` (`enpire_agents.local_eval.run_in_process`), with success from its coverage
(judged after every step) and a failed attempt's reason classified from its ground truth, under one of
three perceptions:

- 'camera': the top camera rendered (`render`), the policy calls the real `policy_tools.locate_block`;
- 'noisy_gt': a stand-in `locate_block` returning the true pose plus Gaussian noise (`noise_px`,
  `noise_deg`), for when the camera stack is absent;
- 'gt': the exact pose.
'auto' picks 'camera' when the camera stack and `policy_tools` import, else 'noisy_gt'.
"""
from __future__ import annotations

import contextlib
import math
import types

import numpy as np

from enpire_task_pusht import geometry as pusht
from enpire_task_pusht.distributions import sample_initial_state

PERCEPTIONS = ('auto', 'camera', 'noisy_gt', 'gt')


class _EnpireSim:
    """`PushTSim` as the harness steps it: a step returns the coverage."""

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


class _Camera:
    """The cell's top camera through `render` (spec from `sim/config/cameras.yaml` if found)."""

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


def camera_available() -> bool:
    try:
        import enpire_task_pusht.policy_tools as tools
        from enpire_task_pusht import render  # noqa: F401
        from enpire_task_pusht.simulator import PushTSim  # noqa: F401
        return hasattr(tools, 'locate_block')
    except Exception:
        return False


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


class InProcessCell:
    """One trial's cell on the simulator: what local evaluation's trial loop asks of it (`observe` gives
    the policy contract's Observation fields, `judge` a verdict as (success, score, reason))."""

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

    def begin_attempt(self, attempt: int):
        self.start_pose, self.start_cov = self.sim.block_pose(), self.cov
        return tuple(self.sim.agent_position())

    def observe(self, step: int, attempt: int) -> dict:
        frames, maps, gt = {}, {}, None
        if self.perception == 'camera':
            frames, maps = self.camera.frames(self.sim)
        else:
            gt = {'block': self.sim.block_pose(), 'coverage': self.cov}
        return dict(step=step, attempt=attempt, time_s=step / pusht.CONTROL_HZ,
                    agent_position=self.sim.agent_position(), agent_velocity=self.sim.agent_velocity(),
                    frames=frames, table_to_image=maps, debug_ground_truth=gt)

    def command(self, values) -> None:
        tx, ty = (min(max(float(v), 0.0), pusht.WORKSPACE_SIZE) for v in values[:2])
        self.cov = self.sim.step((tx, ty))

    def judge(self, final: bool) -> tuple[bool, float, str]:
        """(success, score, reason) now; `final`: the attempt's end, whose failure gets its reason."""
        if pusht.is_success(self.cov):
            return True, float(self.cov), 'success'
        if not final:
            return False, float(self.cov), ''
        end_pose, start_pose = self.sim.block_pose(), self.start_pose
        moved = np.hypot(end_pose[0] - start_pose[0], end_pose[1] - start_pose[1]) > 1.0 or \
            abs(end_pose[2] - start_pose[2]) > 0.01
        return False, float(self.cov), classify_failure(self.start_cov, self.cov, pose_error(end_pose), moved)


class InProcessHarness:
    """One worker's simulator, camera and perception: `policy_tools` is the module a policy gets as
    `enpire_task_pusht.policy_tools` (None: the real one), `cell(seed, distribution)` a fresh trial's cell."""

    cameras = ('top',)

    def __init__(self, perception: str = 'auto', *, noise_px: float = 1.0, noise_deg: float = 0.5,
                 rng: np.random.Generator | None = None, camera_resolution: int | None = None):
        if perception not in PERCEPTIONS:
            raise ValueError(f'unknown perception {perception!r} (known: {", ".join(PERCEPTIONS)})')
        if perception == 'auto':
            perception = 'camera' if camera_available() else 'noisy_gt'
        self.perception = perception
        self.camera, self.policy_tools = None, None
        if perception == 'camera':
            self.camera = _Camera(resolution=camera_resolution)
        else:
            sd = 0.0 if perception == 'gt' else 1.0
            rng = rng or np.random.default_rng(0)
            self.policy_tools = _stand_in_tools(noise_px * sd, noise_deg * sd, rng)
        self.sim = _EnpireSim()

    def cell(self, seed: int, distribution: str) -> InProcessCell:
        return InProcessCell(self.sim, seed, distribution, self.perception, self.camera)


__all__ = ['InProcessHarness', 'InProcessCell', 'PERCEPTIONS', 'camera_available', 'classify_failure']
