"""The peg-insertion cell's physics: metaworld's `SawyerPegInsertionSideEnvV3`, unmodified, as a simulator.

No rclpy here. The environment is metaworld's own class driven through its own API (`set_task`, `reset`,
`step`); this module adds what a cell needs around it: seeded layouts (in and out of distribution), a
controlled reset (the layout is frozen in `_last_rand_vec` through `set_task`), snapshots that restore a
state bit for bit, the task-state vector and metaworld's success rule read off that vector.

Frame: metaworld's world frame (metres; x to the robot's left, y away from the robot base, z up). The box's
hole faces +x; the peg is inserted along -x.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass

import mujoco
import numpy as np

# metaworld's ranges (SawyerPegInsertionSideEnvV3.__init__): peg (obj) and box (goal) positions.
PEG_LOW, PEG_HIGH = (0.0, 0.5, 0.02), (0.2, 0.7, 0.02)
BOX_LOW, BOX_HIGH = (-0.35, 0.4, -0.001), (-0.25, 0.7, 0.001)
# Out of distribution: 5 cm wider on every side in x and y (heights as metaworld's), still inside the
# hand's reach (metaworld's hand_low/high: x -0.5..0.5, y 0.40..1.0) and on the table.
WIDE_MARGIN = 0.05
DISTRIBUTIONS = ('metaworld', 'wide')
MIN_PEG_BOX_DISTANCE = 0.1      # metaworld's reset redraws (forever, with a frozen vector) below this
TARGET_OFFSET = np.array([0.03, 0.0, 0.13])   # the hole's target point from the box's origin
SUCCESS_SCALE = np.array([1.0, 2.0, 2.0])
SUCCESS_RADIUS = 0.07           # SawyerPegInsertionSideEnvV3.TARGET_RADIUS
EPISODE_STEPS = 500             # SawyerXYZEnv.max_path_length
CONTROL_HZ = 80.0               # one step: 2.5 ms timestep x frame_skip 5
ACTION_SIZE = 4

TASK_STATE = ('hand_x', 'hand_y', 'hand_z', 'gripper_open', 'peg_x', 'peg_y', 'peg_z',
              'peg_head_x', 'peg_head_y', 'peg_head_z', 'box_x', 'box_y', 'box_z')
TASK_STATE_UNITS = ('m', 'm', 'm', '1', 'm', 'm', 'm', 'm', 'm', 'm', 'm', 'm', 'm')
PEG_HEAD = slice(7, 10)
BOX = slice(10, 13)


class LayoutError(ValueError):
    """A layout the simulator refuses (metaworld's reset would loop forever or the values are unusable)."""


@dataclass(frozen=True)
class Layout:
    """Where a trial starts: the peg's and the box's positions (metaworld's `rand_vec`, split)."""

    peg: tuple[float, float, float]
    box: tuple[float, float, float]
    seed: int | None = None
    distribution: str | None = None

    def rand_vec(self) -> np.ndarray:
        return np.array([*self.peg, *self.box], dtype=np.float64)

    def problem(self) -> str:
        """'' when metaworld can reset to this layout, else why not."""
        vec = self.rand_vec()
        if vec.shape != (6,) or not np.all(np.isfinite(vec)):
            return 'a layout is six finite numbers (peg xyz, box xyz)'
        distance = float(np.linalg.norm(vec[:2] - vec[3:5]))
        if distance < MIN_PEG_BOX_DISTANCE:
            return (f'peg and box {distance:.3f} m apart in the plane, closer than {MIN_PEG_BOX_DISTANCE} m '
                    '(metaworld\'s reset would redraw forever)')
        return ''


def layout_ranges(distribution: str) -> tuple[np.ndarray, np.ndarray]:
    """Low and high of (peg xyz, box xyz) for a distribution."""
    low, high = np.array([*PEG_LOW, *BOX_LOW]), np.array([*PEG_HIGH, *BOX_HIGH])
    if distribution == 'metaworld':
        return low, high
    if distribution == 'wide':
        widen = np.array([WIDE_MARGIN, WIDE_MARGIN, 0.0] * 2)
        return low - widen, high + widen
    raise ValueError(f'unknown distribution {distribution!r}; known: {", ".join(DISTRIBUTIONS)}')


def sample_layout(seed: int, distribution: str = 'metaworld') -> Layout:
    """The layout of a seed: uniform in the distribution's ranges, redrawn (from the same stream) while peg
    and box are too close, as metaworld's reset does. Deterministic in (seed, distribution)."""
    low, high = layout_ranges(distribution)
    rng = np.random.default_rng([int(seed), DISTRIBUTIONS.index(distribution)])
    while True:
        vec = rng.uniform(low, high)
        layout = Layout(tuple(map(float, vec[:3])), tuple(map(float, vec[3:])), int(seed), distribution)
        if not layout.problem():
            return layout


def success_rule(task_state) -> tuple[float, bool]:
    """metaworld's success: |(peg head - target) * [1, 2, 2]| <= 0.07 with target = box + (0.03, 0, 0.13).
    The score is 1 inside the window and falls as radius / distance outside it.
    """
    state = np.asarray(task_state, dtype=np.float64)
    distance = obj_to_target(state[PEG_HEAD], state[BOX])
    success = bool(distance <= SUCCESS_RADIUS)
    return (1.0 if success else SUCCESS_RADIUS / distance), success


def obj_to_target(peg_head, box) -> float:
    """metaworld's `obj_to_target` (compute_reward, v2), computed in the same order of operations."""
    target = np.asarray(box, dtype=np.float64) + TARGET_OFFSET
    return float(np.linalg.norm((np.asarray(peg_head, dtype=np.float64) - target) * SUCCESS_SCALE))


@dataclass(frozen=True)
class Snapshot:
    """Everything `restore` needs to continue bit for bit: MuJoCo's integration state, the episode counter,
    metaworld's frame-stacking memory and the layout (which lives in the model, not in MjData)."""

    physics: np.ndarray
    curr_path_length: int
    prev_obs: np.ndarray
    last_stable_obs: np.ndarray | None
    layout: Layout
    env_fields: dict


# metaworld attributes its reset derives from the layout and its step/reward read later.
_LAYOUT_FIELDS = ('obj_init_pos', 'peg_head_pos_init', '_target_pos', 'objHeight', 'heightTarget',
                  'maxPlacingDist', 'init_tcp')
_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


class PegSimulator:
    """One peg-insertion cell's physics. `reset(layout)`, `step(action)`, `task_state()`, `snapshot()`,
    `restore(snapshot)`; `env` is metaworld's environment itself (model and data for the cameras).
    `max_steps`: metaworld's episode length (its `max_path_length`, a benchmark's cap that changes no
    physics); a cell whose k attempts continue from where the last one left the arm sets it longer."""

    def __init__(self, max_steps: int = EPISODE_STEPS):
        from metaworld.envs.sawyer_peg_insertion_side_v3 import SawyerPegInsertionSideEnvV3
        self.env = SawyerPegInsertionSideEnvV3()
        self.max_steps = int(max_steps)
        self.env.max_path_length = self.max_steps
        self.layout: Layout | None = None
        self.last_obs: np.ndarray | None = None
        self.last_info: dict = {}

    @property
    def model(self) -> mujoco.MjModel:
        return self.env.model

    @property
    def data(self) -> mujoco.MjData:
        return self.env.data

    @property
    def dt(self) -> float:
        return float(self.env.dt)     # 2.5 ms x frame_skip 5: 80 Hz

    @property
    def steps(self) -> int:
        return int(self.env.curr_path_length)

    def reset(self, layout: Layout) -> np.ndarray:
        """Place peg and box at `layout` through metaworld's own reset (the layout frozen in its task)."""
        problem = layout.problem()
        if problem:
            raise LayoutError(problem)
        self.env.set_task(task_for(layout))
        obs, _ = self.env.reset()
        self.layout, self.last_obs, self.last_info = layout, obs, {}
        return obs

    def step(self, action) -> tuple[np.ndarray, dict]:
        """One control step (metaworld clips the action to [-1, 1]); the episode ends at `max_steps`. The
        action is taken as metaworld's action space holds it, float32 (its policies' and `sample()`'s dtype):
        the same float32 action gives the same state here and in plain metaworld."""
        if self.layout is None:
            raise RuntimeError('reset the simulator to a layout before stepping it')
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (ACTION_SIZE,) or not np.all(np.isfinite(action)):
            raise ValueError(f'an action is {ACTION_SIZE} finite numbers, got {action.tolist()!r}')
        if self.steps >= self.max_steps:
            raise RuntimeError(f'the episode is over ({self.max_steps} steps): reset')
        obs, _, _, _, info = self.env.step(action)
        self.last_obs, self.last_info = obs, info
        return obs, info

    def next_episode(self) -> None:
        """Restart metaworld's 500-step episode counter where the physics stands, without a reset: the next
        attempt of a k-attempt trial continues from where the last one left the arm (the counter only
        bounds an episode; nothing in the physics reads it)."""
        if self.layout is None:
            raise RuntimeError('reset the simulator to a layout first')
        self.env.curr_path_length = 0

    def task_state(self) -> np.ndarray:
        env = self.env
        return np.concatenate([
            env.get_endeff_pos(), [self._gripper_open()], env._get_pos_objects(),
            env._get_site_pos('pegHead'), env.data.body('box').xpos,
        ]).astype(np.float64)

    def _gripper_open(self) -> float:
        # metaworld's observation entry 3: finger distance / 0.1, clipped to [0, 1]
        return float(self.env._get_curr_obs_combined_no_goal()[3])

    def success(self) -> tuple[float, bool]:
        return success_rule(self.task_state())

    def snapshot(self) -> Snapshot:
        if self.layout is None:
            raise RuntimeError('nothing to snapshot before the first reset')
        physics = np.empty(mujoco.mj_stateSize(self.model, _STATE_SPEC))
        mujoco.mj_getState(self.model, self.data, physics, _STATE_SPEC)
        env = self.env
        return Snapshot(physics, int(env.curr_path_length), env._prev_obs.copy(),
                        None if env._last_stable_obs is None else env._last_stable_obs.copy(), self.layout,
                        {name: np.copy(getattr(env, name)) for name in _LAYOUT_FIELDS})

    def restore(self, snapshot: Snapshot) -> None:
        env = self.env
        if self.layout != snapshot.layout:
            self._place(snapshot.layout)
        for name, value in snapshot.env_fields.items():
            setattr(env, name, np.copy(value))
        # Positions for task_state and the cameras come from mj_forward, which also moves the solver's warm
        # start (part of the state): set the state again after it so the next step matches bit for bit.
        mujoco.mj_setState(self.model, self.data, snapshot.physics, _STATE_SPEC)
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_setState(self.model, self.data, snapshot.physics, _STATE_SPEC)
        env.curr_path_length = snapshot.curr_path_length
        env._prev_obs = snapshot.prev_obs.copy()
        env._last_stable_obs = None if snapshot.last_stable_obs is None else snapshot.last_stable_obs.copy()
        self.layout = snapshot.layout

    def _place(self, layout: Layout) -> None:
        """The model-side part of a layout (box and goal site), as metaworld's reset_model sets them."""
        self.env.set_task(task_for(layout))
        box = np.array(layout.box)
        self.model.body('box').pos = box
        self.model.site('goal').pos = box + TARGET_OFFSET

    def close(self) -> None:
        self.env.close()


def task_for(layout: Layout):
    """A metaworld `Task` that freezes the reset at `layout`, with the goal in the observation (as
    metaworld's multi-task benchmarks give it: its scripted expert reads the hole's position there)."""
    from metaworld.envs.sawyer_peg_insertion_side_v3 import SawyerPegInsertionSideEnvV3
    from metaworld.types import Task
    data = {'env_cls': SawyerPegInsertionSideEnvV3, 'rand_vec': layout.rand_vec(),
            'partially_observable': False}
    return Task(env_name='peg-insert-side-v3', data=pickle.dumps(data))
