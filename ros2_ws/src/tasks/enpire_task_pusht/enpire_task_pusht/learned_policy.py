"""Push-T's learned-policy features: what a network sees of the cell and how its output becomes a target.

The numpy MLP runtime is the cell's (`enpire_rollout.learned_policy`, re-exported here); a Push-T policy
source does, inside the sandbox:

    from enpire_task_pusht import learned_policy as lp
    NET = lp.load_mlp('/abs/path/bc_1a2b3c.npz', sha256='1a2b3c...')     # once, at load or reset
    x = lp.pusht_features(observation.agent_position, pose)             # the features it was trained on
    target = lp.pusht_target(observation.agent_position, NET(x))        # workspace pixels

or, for any feature map by the name the weights carry (`pusht_v1`, or `pusht_v2` with a short history):

    F = lp.feature_map(NET.features)                                    # at reset; F.reset() per attempt
    target = lp.pusht_target(agent, NET(F(agent, pose)))
    F.commanded(target)                                                 # the history's previous command

The dataset builder and the sandboxed policy both run these functions, so what was trained and what runs
cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

from enpire_rollout.learned_policy import MLP, export_mlp, load_mlp

FEATURES = 'pusht_v1'
FEATURE_NAMES = ('agent_x', 'agent_y', 'block_x', 'block_y', 'cos_theta', 'sin_theta', 'dx', 'dy')


def pusht_features(agent_position, block_pose) -> np.ndarray:
    """The learned policies' input: agent (x, y), T origin (x, y), cos/sin of its angle, T minus agent."""
    ax, ay = float(agent_position[0]), float(agent_position[1])
    bx, by, th = (float(v) for v in block_pose[:3])
    return np.array([ax, ay, bx, by, math.cos(th), math.sin(th), bx - ax, by - ay], dtype=np.float64)


FEATURES_HIST = 'pusht_v2'
HIST_FEATURE_NAMES = FEATURE_NAMES + (
    'prev_cmd_dx',
    'prev_cmd_dy',
    'agent_step_x',
    'agent_step_y',
    'block_step_x',
    'block_step_y',
    'block_step_theta',
)
FEATURE_MAPS = {FEATURES: FEATURE_NAMES, FEATURES_HIST: HIST_FEATURE_NAMES}


class PushTFeatures:
    """A named Push-T feature map with the short history it needs (one instance per rollout).

    'pusht_v1'  `pusht_features` (memoryless; the history calls are no-ops)
    'pusht_v2'  v1 plus a one-step history: the previous command minus the agent (the command the
                policy gave one step before; in a dataset the safe command the cell tracked), the
                agent's and the T's displacement since the previous step (angle wrapped to [-pi, pi));
                zeros on the first step of an attempt

    Per step: `x = f(agent, pose)`, then `f.commanded(target)`; `f.reset()` at each attempt's start.
    The dataset builder and the sandboxed policy both run this class, so they cannot drift apart.
    """

    def __init__(self, name: str = FEATURES):
        name = name or FEATURES          # weights that name no feature map were trained on the first one
        if name not in FEATURE_MAPS:
            raise ValueError(f'unknown feature map {name!r} (known: {sorted(FEATURE_MAPS)})')
        self.name = name
        self.names = FEATURE_MAPS[name]
        self.reset()

    @property
    def n(self) -> int:
        return len(self.names)

    def reset(self) -> None:
        self._agent = self._pose = self._cmd = None

    def __call__(self, agent_position, block_pose) -> np.ndarray:
        base = pusht_features(agent_position, block_pose)
        if self.name == FEATURES:
            return base
        ax, ay = float(agent_position[0]), float(agent_position[1])
        pose = tuple(float(v) for v in block_pose[:3])
        cmd = self._cmd if self._cmd is not None else (ax, ay)
        prev_agent = self._agent if self._agent is not None else (ax, ay)
        prev_pose = self._pose if self._pose is not None else pose
        dth = (pose[2] - prev_pose[2] + math.pi) % (2.0 * math.pi) - math.pi
        self._agent, self._pose, self._cmd = (ax, ay), pose, None
        hist = [cmd[0] - ax, cmd[1] - ay, ax - prev_agent[0], ay - prev_agent[1]]
        hist += [pose[0] - prev_pose[0], pose[1] - prev_pose[1], dth]
        return np.concatenate([base, np.array(hist, dtype=np.float64)])

    def commanded(self, target) -> None:
        """The command given for the step just featurised (the history's 'previous command')."""
        self._cmd = (float(target[0]), float(target[1]))


def feature_map(name: str = FEATURES) -> PushTFeatures:
    """A fresh feature map by name (an MLP's `features`), e.g. `lp.feature_map(net.features)`."""
    return PushTFeatures(name)


def pusht_target(agent_position, output, workspace: float = 512.0) -> tuple[float, float]:
    """The network's output (target minus agent position, pixels) as a target on the table."""
    x = float(agent_position[0]) + float(output[0])
    y = float(agent_position[1]) + float(output[1])
    return (min(max(x, 0.0), workspace), min(max(y, 0.0), workspace))


def pusht_action_label(agent_position, target) -> np.ndarray:
    """The training label matching `pusht_target`: target minus agent position."""
    return np.array(
        [float(target[0]) - float(agent_position[0]), float(target[1]) - float(agent_position[1])]
    )


__all__ = [
    'MLP',
    'load_mlp',
    'export_mlp',
    'pusht_features',
    'pusht_target',
    'pusht_action_label',
    'FEATURES',
    'FEATURE_NAMES',
    'FEATURES_HIST',
    'HIST_FEATURE_NAMES',
    'FEATURE_MAPS',
    'PushTFeatures',
    'feature_map',
]
