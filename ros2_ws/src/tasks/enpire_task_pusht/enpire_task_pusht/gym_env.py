"""Gymnasium environment of the simulated Push-T cell, registered as `enpire/PushT-v0`.

    import gymnasium as gym
    import enpire_task_pusht.gym_env  # registers the id
    env = gym.make('enpire/PushT-v0', obs_type='multi_camera', pacing='as_fast')
    obs, info = env.reset(seed=3, options={'distribution': 'out_of_distribution'})

- obs_type 'state': gym-pusht's vector [agent_x, agent_y, block_x, block_y, angle mod 2pi];
  'pixels': the image of one camera (`camera`, default 'top'); 'multi_camera': {camera name: image}.
  A dropped-out frame (camera fault) is an all-zero image.
- reset(seed, options): the initial state is `sample_initial_state(seed, distribution)`
  (options['distribution'], default the env's); options['initial_state'] (an InitialState or a dict
  with block/agent) places exactly; options['reset_to_state'] takes gym-pusht's 5-vector with its
  legacy position-before-angle order, for side-by-side runs.
- reward clip(coverage / 0.95, 0, 1); terminated at coverage > 0.95; truncated after 300 steps.
- pacing 'as_fast' steps immediately; 'real_time' holds each step to a 10 Hz wall clock (a fixed
  schedule, so slow steps do not accumulate drift), like actions on a robot.
"""
from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from enpire_task_pusht.distributions import DISTRIBUTIONS, InitialState, sample_initial_state
from enpire_task_pusht.geometry import CONTROL_HZ, EPISODE_STEPS, GOAL_POSE, SUCCESS_COVERAGE, WORKSPACE_SIZE
from enpire_task_pusht.render import DEFAULT_CAMERAS, CameraFaults, CameraRig, CameraSpec, RenderState
from enpire_task_pusht.simulator import PushTSim

ENV_ID = 'enpire/PushT-v0'
OBS_TYPES = ('state', 'pixels', 'multi_camera')
PACINGS = ('as_fast', 'real_time')


class EnpirePushTEnv(gym.Env):
    metadata = {'render_modes': ['rgb_array'], 'render_fps': CONTROL_HZ}

    def __init__(self, obs_type: str = 'state', pacing: str = 'as_fast',
                 distribution: str = 'in_distribution',
                 cameras: tuple[CameraSpec, ...] = DEFAULT_CAMERAS, camera: str = 'top',
                 faults: dict[str, CameraFaults] | None = None, render_mode: str | None = 'rgb_array',
                 max_episode_steps: int = EPISODE_STEPS):
        if obs_type not in OBS_TYPES:
            raise ValueError(f'unknown obs_type {obs_type!r}; expected one of {OBS_TYPES}')
        if pacing not in PACINGS:
            raise ValueError(f'unknown pacing {pacing!r}; expected one of {PACINGS}')
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f'unknown distribution {distribution!r}; expected one of {DISTRIBUTIONS}')
        specs = {s.name: s for s in cameras}
        if camera not in specs:
            raise ValueError(f'no camera {camera!r} among {sorted(specs)}')
        self.obs_type, self.pacing, self.distribution = obs_type, pacing, distribution
        self.camera, self.render_mode, self.max_episode_steps = camera, render_mode, max_episode_steps
        self.rig = CameraRig(tuple(cameras), dict(faults or {}))
        self._specs = specs
        self.sim = PushTSim()
        self._deadline: float | None = None

        self.action_space = spaces.Box(low=0.0, high=WORKSPACE_SIZE, shape=(2,), dtype=np.float32)
        state_space = spaces.Box(low=np.zeros(5), high=np.array([512, 512, 512, 512, 2 * np.pi]),
                                 dtype=np.float64)

        def image_space(spec):
            return spaces.Box(0, 255, shape=(spec.height, spec.width, 3), dtype=np.uint8)

        if obs_type == 'state':
            self.observation_space = state_space
        elif obs_type == 'pixels':
            self.observation_space = image_space(specs[camera])
        else:
            self.observation_space = spaces.Dict({n: image_space(s) for n, s in specs.items()})

    # -- gym API -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        distribution = options.get('distribution', self.distribution)
        if options.get('reset_to_state') is not None:
            self.sim.place_gym_state(np.asarray(options['reset_to_state'], dtype=float))
            initial = None
        else:
            initial = options.get('initial_state')
            if isinstance(initial, dict):
                initial = InitialState(block=tuple(initial['block']), agent=tuple(initial['agent']))
            if initial is None:
                draw = seed if seed is not None else int(self.np_random.integers(2**31))
                initial = sample_initial_state(draw, distribution)
            self.sim.place(initial.block, initial.agent)
        self._deadline = None
        info = self._info()
        info['is_success'] = False
        info['initial_state'] = initial
        return self._obs(), info

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f'action must be two finite numbers, got {action!r}')
        if self.pacing == 'real_time':
            self._wait_for_tick()
        self.sim.step(action)
        coverage = self.sim.coverage()
        terminated = coverage > SUCCESS_COVERAGE
        truncated = self.sim.step_count >= self.max_episode_steps
        reward = float(np.clip(coverage / SUCCESS_COVERAGE, 0.0, 1.0))
        info = self._info()
        info['is_success'] = terminated
        return self._obs(), reward, terminated, truncated, info

    def render(self):
        frame = self.rig.capture(RenderState.from_sim(self.sim), [self.camera])[self.camera]
        return self._image(frame, self._specs[self.camera])

    # -- internals -----------------------------------------------------------------------------------
    def _wait_for_tick(self) -> None:
        period = 1.0 / CONTROL_HZ
        now = time.monotonic()
        if self._deadline is None or now - self._deadline > period:
            self._deadline = now  # first step, or fell more than a period behind: restart the schedule
        else:
            time.sleep(max(0.0, self._deadline - now))
        self._deadline += period

    def _obs(self):
        if self.obs_type == 'state':
            return np.asarray(self.sim.state_vector(), dtype=np.float64)
        state = RenderState.from_sim(self.sim)
        if self.obs_type == 'pixels':
            frame = self.rig.capture(state, [self.camera])[self.camera]
            return self._image(frame, self._specs[self.camera])
        frames = self.rig.capture(state)
        return {name: self._image(frames[name], spec) for name, spec in self._specs.items()}

    @staticmethod
    def _image(frame, spec: CameraSpec) -> np.ndarray:
        return frame.image if frame is not None else np.zeros((spec.height, spec.width, 3), np.uint8)

    def _info(self) -> dict:
        return {
            'coverage': self.sim.coverage(),
            'pos_agent': np.array(self.sim.agent_position),
            'vel_agent': np.array(self.sim.agent_velocity),
            'block_pose': np.array(self.sim.block_pose),
            'goal_pose': np.array(GOAL_POSE),
            'step': self.sim.step_count,
        }


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point='enpire_task_pusht.gym_env:EnpirePushTEnv')
