"""Online RL on the simulated cell: Stable-Baselines3 PPO on the task's Gymnasium env.

    result = train_ppo(out_dir, timesteps=30_000)      # -> BCResult(path, sha256, ...); .npz runtime

Why PPO (SB3): SB3 is a well-kept, tested library with a Gymnasium interface; of its algorithms PPO
is the one that fits a small CPU budget on a shared machine -- an update costs a few epochs over a
rollout buffer, where SAC/TD3 take a gradient step per environment step (at one torch thread, several
times slower per sample), and PPO's deterministic actor is a plain MLP that exports exactly to the
numpy runtime. Budgets here are small (tens of thousands of steps); a task's sparse success bar may not
be reached by PPO in that budget -- the benchmark reports what it does reach.

The task's parts (`task_learning(task)`): observation = its `state_features` of the env's state (the
learned policy's feature map without history) -- during training from the simulator's state, in the
sandbox from the camera, so the input is the same quantity. Action: a in [-1, 1]^2, target =
`target(agent, max_delta * a)` (what the exported policy does with the network's output). Reward: the
env's. The exported actor is mlp_extractor.policy_net + action_net (tanh hidden layers), with the output
clipped to [-1, 1] like SB3 clips the action.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from enpire_agents.regimes import task_learning

FEATURE_MEAN = np.array([256.0, 256.0, 256.0, 256.0, 0.0, 0.0, 0.0, 0.0])
FEATURE_STD = np.array([150.0, 150.0, 150.0, 150.0, 1.0, 1.0, 150.0, 150.0])


def make_env(max_delta: float = 40.0, max_episode_steps: int = 300, distribution: str = 'in_distribution',
             task: str | None = None):
    """The task's Gymnasium env wrapped to the learned policies' features and relative actions."""
    import gymnasium as gym

    learning = task_learning(task)
    lp = learning.runtime

    class FeatureEnv(gym.Wrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = gym.spaces.Box(
                -10.0, 10.0, shape=(len(lp.FEATURE_NAMES),), dtype=np.float32
            )
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
            self._agent = np.zeros(2)

        def _feat(self, state):
            self._agent = learning.agent_of_state(state)
            f = learning.state_features(state)
            return ((f - FEATURE_MEAN) / FEATURE_STD).astype(np.float32)

        def reset(self, **kw):
            obs, info = self.env.reset(**kw)
            return self._feat(obs), info

        def step(self, action):
            a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
            target = learning.target(self._agent, a * max_delta)
            obs, reward, terminated, truncated, info = self.env.step(np.asarray(target))
            return self._feat(obs), reward, terminated, truncated, info

    return FeatureEnv(learning.make_gym_env(distribution=distribution, max_episode_steps=max_episode_steps))


def train_ppo(
    out_dir: str | Path,
    *,
    timesteps: int = 30_000,
    seed: int = 0,
    max_delta: float = 40.0,
    n_steps: int = 2048,
    name: str = 'ppo',
    max_seconds: float | None = None,
    task: str | None = None,
) -> tuple:
    """Train PPO for `timesteps` env steps; export the deterministic actor. Returns (BCResult, stats)."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from enpire_agents.regimes.bc import _export

    torch.set_num_threads(1)
    env = make_env(max_delta, task=task)
    t0 = time.monotonic()
    stats = {'episodes': 0, 'successes': 0, 'steps': 0}

    class Budget(BaseCallback):
        def _on_step(self) -> bool:
            for info, done in zip(self.locals.get('infos', []), self.locals.get('dones', []), strict=False):
                if done:
                    stats['episodes'] += 1
                    stats['successes'] += int(bool(info.get('is_success')))
            stats['steps'] = int(self.num_timesteps)
            return max_seconds is None or time.monotonic() - t0 < max_seconds

    model = make_ppo(env, seed=seed, n_steps=n_steps)
    model.learn(total_timesteps=int(timesteps), callback=Budget())
    net = export_actor(model, max_delta, task=task)
    net.meta.update(
        {
            'regime': 'online_rl',
            'algorithm': 'sb3_ppo',
            'timesteps': stats['steps'],
            'train_episodes': stats['episodes'],
            'train_successes': stats['successes'],
            'max_delta': max_delta,
            'env': task_learning(task).gym_env,
        }
    )
    env.close()
    seconds = time.monotonic() - t0
    stats['seconds'] = round(seconds, 1)
    return _export(net, out_dir, name, stats['steps'], stats['episodes'], float('nan'), seconds, task), stats


def make_ppo(env, *, seed: int = 0, n_steps: int = 2048):
    """The SB3 PPO that `train_ppo` trains: 64x64 tanh actor and critic, 5 epochs per rollout, CPU."""
    from stable_baselines3 import PPO

    return PPO(
        'MlpPolicy',
        env,
        n_steps=n_steps,
        batch_size=min(256, n_steps),
        n_epochs=5,
        gamma=0.99,
        seed=seed,
        verbose=0,
        device='cpu',
        policy_kwargs={'net_arch': {'pi': [64, 64], 'vf': [64, 64]}},
    )


def export_actor(model, max_delta: float, task: str | None = None):
    """SB3 PPO's deterministic actor as a numpy MLP whose output is the target minus the agent (px)."""
    import torch

    linears = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    linears.append(model.policy.action_net)
    acts = {
        type(m).__name__ for m in model.policy.mlp_extractor.policy_net if not isinstance(m, torch.nn.Linear)
    }
    activation = 'tanh' if acts == {'Tanh'} else 'relu'
    return task_learning(task).runtime.MLP(
        [m.weight.detach().double().numpy().T.copy() for m in linears],
        [m.bias.detach().double().numpy().copy() for m in linears],
        activation=activation,
        in_mean=FEATURE_MEAN,
        in_std=FEATURE_STD,
        out_mean=np.zeros(2),
        out_std=np.full(2, max_delta),
        out_clip=1.0,
        meta={},
    )


__all__ = ['make_env', 'make_ppo', 'train_ppo', 'export_actor']
