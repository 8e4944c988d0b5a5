"""Online RL on the simulated cell: Stable-Baselines3 PPO on the Gymnasium env 'enpire/PushT-v0'.

    result = train_ppo(out_dir, timesteps=30_000)      # -> BCResult(path, sha256, ...); .npz runtime

Why PPO (SB3): SB3 is a well-kept, tested library with a Gymnasium interface; of its algorithms PPO
is the one that fits a small CPU budget on a shared machine -- an update costs a few epochs over a
rollout buffer, where SAC/TD3 take a gradient step per environment step (at one torch thread, several
times slower per sample), and PPO's deterministic actor is a plain MLP that exports exactly to the
numpy runtime. Budgets here are small (tens of thousands of steps); Push-T's sparse 95% coverage bar
is not reached by PPO in that budget -- the benchmark reports what it does reach.

Observation: `learned_policy.pusht_features` of the state (agent, T pose) -- during training from the
simulator's state, in the sandbox from the camera (`locate_block`), so the input is the same quantity.
Action: a in [-1, 1]^2, target = agent + max_delta * a (what `pusht_target` does with the exported
output). Reward: the env's clip(coverage / 0.95). The exported actor is mlp_extractor.policy_net +
action_net (tanh hidden layers), with the output clipped to [-1, 1] like SB3 clips the action.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from enpire_task_pusht import learned_policy as lp

FEATURE_MEAN = np.array([256.0, 256.0, 256.0, 256.0, 0.0, 0.0, 0.0, 0.0])
FEATURE_STD = np.array([150.0, 150.0, 150.0, 150.0, 1.0, 1.0, 150.0, 150.0])


def make_env(max_delta: float = 40.0, max_episode_steps: int = 300, distribution: str = 'in_distribution'):
    """The Gymnasium env wrapped to the learned policies' features and relative actions."""
    import enpire_task_pusht.gym_env  # noqa: F401  (registers enpire/PushT-v0)
    import gymnasium as gym

    class FeatureEnv(gym.Wrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = gym.spaces.Box(
                -10.0, 10.0, shape=(len(lp.FEATURE_NAMES),), dtype=np.float32
            )
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
            self._agent = np.zeros(2)

        def _feat(self, state):
            self._agent = np.asarray(state[:2], dtype=float)
            f = lp.pusht_features(state[:2], state[2:5])
            return ((f - FEATURE_MEAN) / FEATURE_STD).astype(np.float32)

        def reset(self, **kw):
            obs, info = self.env.reset(**kw)
            return self._feat(obs), info

        def step(self, action):
            a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
            target = lp.pusht_target(self._agent, a * max_delta)
            obs, reward, terminated, truncated, info = self.env.step(np.asarray(target))
            return self._feat(obs), reward, terminated, truncated, info

    env = gym.make(
        'enpire/PushT-v0',
        obs_type='state',
        pacing='as_fast',
        distribution=distribution,
        max_episode_steps=max_episode_steps,
    )
    return FeatureEnv(env)


def train_ppo(
    out_dir: str | Path,
    *,
    timesteps: int = 30_000,
    seed: int = 0,
    max_delta: float = 40.0,
    n_steps: int = 2048,
    name: str = 'ppo',
    max_seconds: float | None = None,
) -> tuple:
    """Train PPO for `timesteps` env steps; export the deterministic actor. Returns (BCResult, stats)."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from enpire_agents.regimes.bc import _export

    torch.set_num_threads(1)
    env = make_env(max_delta)
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
    net = export_actor(model, max_delta)
    net.meta.update(
        {
            'regime': 'online_rl',
            'algorithm': 'sb3_ppo',
            'timesteps': stats['steps'],
            'train_episodes': stats['episodes'],
            'train_successes': stats['successes'],
            'max_delta': max_delta,
            'env': 'enpire/PushT-v0',
        }
    )
    env.close()
    seconds = time.monotonic() - t0
    stats['seconds'] = round(seconds, 1)
    return _export(net, out_dir, name, stats['steps'], stats['episodes'], float('nan'), seconds), stats


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


def export_actor(model, max_delta: float) -> lp.MLP:
    """SB3 PPO's deterministic actor as a numpy MLP whose output is the target minus the agent (px)."""
    import torch

    linears = [m for m in model.policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    linears.append(model.policy.action_net)
    acts = {
        type(m).__name__ for m in model.policy.mlp_extractor.policy_net if not isinstance(m, torch.nn.Linear)
    }
    activation = 'tanh' if acts == {'Tanh'} else 'relu'
    return lp.MLP(
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
