"""Push-T's parts of the learning regimes (`enpire_agents.regimes`), found through `Task.extras['learning']`.

The regimes are task-free: what a learned or tool-calling Push-T policy is made of lives here -- the numpy
runtime and feature maps (`learned_policy`), the T perception a policy calls (`policy_tools.locate_block`),
the target mapping and its training label, the Gymnasium env online RL trains on, the policy sources the
regimes write, and the LeRobot export's task text and environment state.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from enpire_task_pusht import learned_policy as lp
from enpire_task_pusht import policy_tools

GYM_ENV = 'enpire/PushT-v0'

LEARNED_POLICY_TEMPLATE = '''"""Learned policy ({regime}): {note}

The network (weights below, pinned by their sha256) runs in enpire_task_pusht.learned_policy (numpy); its
input is the feature map the weights name (lp.feature_map): the T pose from the cameras
(policy_tools.locate_block), the agent position and, for pusht_v2, the previous command and step.
"""
from enpire_task_pusht import learned_policy as lp
from enpire_task_pusht import policy_tools as pt

REGIME = {regime!r}
WEIGHTS = {path!r}
WEIGHTS_SHA256 = {sha!r}
CAMERA = {camera!r}   # the training features' camera; any other camera only when it shows no T


class Policy:
    def reset(self, context):
        self.net = lp.load_mlp(WEIGHTS, sha256=WEIGHTS_SHA256)
        self.features = lp.feature_map(self.net.features)
        self.pose = None

    def act(self, observation):
        agent = observation.agent_position
        seen = pt.locate_block(observation, CAMERA) or pt.locate_block(observation)
        if seen is not None:
            self.pose = seen
        if self.pose is None:
            return (float(agent[0]), float(agent[1]))
        target = lp.pusht_target(agent, self.net(self.features(agent, self.pose)))
        self.features.commanded(target)
        return target

    def on_attempt_failed(self, report):
        self.pose = None
        self.features.reset()
'''

TOOL_POLICY_TEMPLATE = '''"""Tool-calling policy ({plan}): composes enpire_task_pusht.policy_motion_tools."""
import math

from enpire_task_pusht import policy_motion_tools as mt
from enpire_task_pusht import policy_tools as pt

PLAN = {plan!r}
PARAMS = {params}
TOOL_OPTIONS = {tool_options!r}
CAMERA = 'top'   # the finest view of the whole table; any other camera only when it shows no T


class Policy:
    def reset(self, context):
        self.memory = dict()
        self.pose = None
        self.scale = 1.0

    def options(self):
        opts = dict((k, PARAMS[k]) for k in TOOL_OPTIONS)
        opts['gain'] = opts['gain'] * self.scale
        return opts

    def act(self, observation):
        agent = observation.agent_position
        seen = pt.locate_block(observation, CAMERA) or pt.locate_block(observation)
        if seen is not None:
            self.pose = seen
        if self.pose is None:
            return (float(agent[0]), float(agent[1]))
        pose = self.pose
        if mt.coverage_estimate(pose) >= PARAMS['hold_cov']:
            return (float(agent[0]), float(agent[1]))          # done: hold still for the verifier
        dx, dy, dth = mt.pose_error(pose)
        if PLAN == 'rotate_first' and abs(dth) > math.radians(PARAMS['rotate_deg']):
            return mt.rotate(agent, pose, mt.GOAL_POSE[2], self.memory, **self.options())
        if PLAN == 'translate_first' and math.hypot(dx, dy) > PARAMS['far_px']:
            goal_com = mt.com(mt.GOAL_POSE)
            return mt.push_to(agent, pose, (goal_com[0], goal_com[1]), self.memory, **self.options())
        return mt.push_pose(agent, pose, mt.GOAL_POSE, self.memory, **self.options())

    def on_attempt_failed(self, report):
        self.memory.clear()
        if report.score > 0.8:
            self.scale = self.scale * PARAMS['retry_gain']     # near miss: finer strokes next time
'''


def make_gym_env(distribution: str = 'in_distribution', max_episode_steps: int = 300):
    """The Gymnasium env online RL trains on (state observations, as fast as it steps)."""
    import gymnasium as gym

    import enpire_task_pusht.gym_env  # noqa: F401  (registers enpire/PushT-v0)

    return gym.make(GYM_ENV, obs_type='state', pacing='as_fast', distribution=distribution,
                    max_episode_steps=max_episode_steps)


def agent_of_state(state) -> np.ndarray:
    """The agent position in the env's state vector (agent x, y, T x, y, theta)."""
    return np.asarray(state[:2], dtype=float)


def state_features(state) -> np.ndarray:
    """The learned policy's features (`lp.FEATURES`) of the env's state vector."""
    return lp.pusht_features(state[:2], state[2:5])


ENVIRONMENT_STATE = ('block_x', 'block_y', 'cos_theta', 'sin_theta')   # LeRobot's environment_state


def environment_state(obs: np.ndarray) -> np.ndarray:
    """The camera-derived T pose (x, y, cos, sin) out of a feature matrix (either feature map)."""
    return obs[:, 2:6]


LEARNING = SimpleNamespace(
    runtime=lp,                               # MLP, export_mlp, load_mlp, FEATURES, FEATURE_MAPS, feature_map
    default_feature_map=lp.FEATURES_HIST,
    locate=policy_tools.locate_block,         # frames -> the T pose a learned policy sees (or None)
    target=lp.pusht_target,                   # (agent, network output) -> target on the table
    action_label=lp.pusht_action_label,       # (agent, target) -> the training label matching `target`
    gym_env=GYM_ENV,
    make_gym_env=make_gym_env,
    agent_of_state=agent_of_state,
    state_features=state_features,
    learned_policy_template=LEARNED_POLICY_TEMPLATE,
    tool_policy_template=TOOL_POLICY_TEMPLATE,
    lerobot_task='Push the T-shaped block onto the goal pose.',
    lerobot_robot_type='enpire_pusht',
    environment_state_names=ENVIRONMENT_STATE,
    environment_state=environment_state,
)
