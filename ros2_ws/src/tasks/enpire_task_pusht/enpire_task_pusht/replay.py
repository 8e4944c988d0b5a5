"""Push-T for `enpire audit --replay`: the cell's own simulator, and gym-pusht as an independent reference.

Both speak the replay protocol of `enpire_rollout.audit_replay.ReplayModel` in the vectors the generic
messages carry: `place(task_state, tool)` with the T's origin pose (x, y, theta) and the pusher (x, y),
`step(action)` with a target (x, y), `tool()` = the pusher's (x, y, 0, vx, vy, 0) as a CellState reports it,
`state()` = gym-pusht's observation [agent x, y, block x, y, theta mod 2 pi] to compare the two, and
`judge()` = (coverage, coverage > 0.95), the task's own rule.
"""
from __future__ import annotations

import importlib

import numpy as np

from enpire_task_pusht.geometry import is_success


class PushTReplay:
    """The simulated cell's physics (`enpire_task_pusht.simulator.PushTSim`, bit for bit gym-pusht's)."""

    def __init__(self, task_state, tool):
        from enpire_task_pusht.simulator import PushTSim
        self.sim = PushTSim()
        self.sim.place(tuple(task_state), tuple(tool))

    def step(self, action) -> None:
        self.sim.step(tuple(action))

    def task_state(self) -> tuple[float, ...]:
        return tuple(self.sim.block_pose)

    def tool(self) -> tuple[float, ...]:
        (x, y), (vx, vy) = self.sim.agent_position, self.sim.agent_velocity
        return (x, y, 0.0, vx, vy, 0.0)

    def state(self) -> list[float]:
        return self.sim.state_vector()

    def judge(self) -> tuple[float, bool]:
        score = self.sim.coverage()
        return score, is_success(score)


class GymPushTReplay:
    """The unmodified gym-pusht environment, placed as the cell places (angle, then position).
    ImportError when gym-pusht is not installed."""

    def __init__(self, task_state, tool):
        gym = importlib.import_module('gymnasium')
        importlib.import_module('gym_pusht')
        self.env = gym.make('gym_pusht/PushT-v0', obs_type='state').unwrapped
        self.env.reset(seed=0)
        self.env._setup()
        self.env.agent.position = tuple(tool)
        self.env.block.angle = task_state[2]
        self.env.block.position = tuple(task_state[:2])
        self.env.space.step(self.env.dt)
        self._state = None
        self.score = self.env._get_coverage()

    def step(self, action) -> None:
        obs, _reward, _terminated, _truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        self._state = [float(v) for v in obs]
        self.score = float(info['coverage'])

    def state(self) -> list[float] | None:
        return self._state

    def judge(self) -> tuple[float, bool]:
        return self.score, is_success(self.score)
