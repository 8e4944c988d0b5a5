"""Offline RL from trial bags: advantage-weighted regression (AWR) on the verifier's reward.

    result = train_awr(build_dataset(bag_root, only_success=False), out_dir)

Unlike behaviour cloning it learns from every trial, failed ones included. Each attempt ends with the
verifier's verdict recorded in the bag; the step return is G_t = gamma^(T-1-t) * (success +
score_weight * score) of the attempt the step belongs to (binary reward, plus the fused score as a
dense hint). A value MLP V(s) is fitted to G, and the policy MLP is fitted to the safe commands with
weights exp((G - V(s)) / beta), clipped at max_weight: commands that led to better-than-expected
verdicts count more. Exported to the same .npz runtime as behaviour cloning.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from enpire_agents.regimes.bc import BCResult, _export, train_mlp


def returns(ds, gamma: float = 0.99, score_weight: float = 0.5) -> np.ndarray:
    """Per-step discounted return to the end of its attempt, from the recorded verdicts."""
    out = []
    for t in ds.trials:
        reward = t.attempt_success.astype(float) + score_weight * t.attempt_score
        g = np.zeros(len(t.obs))
        for i in range(len(t.obs)):
            same = t.attempt == t.attempt[i]
            remaining = int(same[i:].sum()) - 1
            g[i] = (gamma**remaining) * reward[i]
        out.append(g)
    return np.concatenate(out) if out else np.zeros(0)


def advantage_weights(
    ds,
    *,
    gamma: float = 0.99,
    score_weight: float = 0.5,
    beta: float = 0.1,
    max_weight: float = 20.0,
    seed: int = 0,
    value_epochs: int = 60,
    max_seconds: float | None = 30.0,
) -> tuple[np.ndarray, dict]:
    g = returns(ds, gamma, score_weight)
    _, value, vloss = train_mlp(
        ds.obs, g[:, None], hidden=(64, 64), epochs=value_epochs, seed=seed, max_seconds=max_seconds,
        task=getattr(ds, 'task', None),
    )
    adv = g - value(ds.obs)[:, 0]
    w = np.minimum(np.exp(np.clip(adv / beta, -50, 50)), max_weight)
    return w, {
        'value_loss': float(vloss),
        'mean_return': float(g.mean()),
        'adv_std': float(adv.std()),
        'weight_mean': float(w.mean()),
        'weight_max': float(w.max()),
    }


def train_awr(
    ds,
    out_dir: str | Path,
    *,
    name: str = 'awr',
    hidden=(128, 128),
    epochs: int = 150,
    gamma: float = 0.99,
    score_weight: float = 0.5,
    beta: float = 0.1,
    max_weight: float = 20.0,
    seed: int = 0,
    max_seconds: float | None = 60.0,
) -> BCResult:
    if len(ds) == 0:
        raise ValueError('empty dataset: no trial to learn from')
    t0 = time.monotonic()
    w, info = advantage_weights(
        ds, gamma=gamma, score_weight=score_weight, beta=beta, max_weight=max_weight, seed=seed
    )
    task = getattr(ds, 'task', None)
    _, net, loss = train_mlp(
        ds.obs, ds.act, w, hidden=hidden, epochs=epochs, seed=seed, max_seconds=max_seconds, task=task
    )
    net.features = getattr(ds, 'feature_map', net.features)
    net.meta.update(
        {
            'regime': 'offline_rl',
            'algorithm': 'awr',
            'features': ds.features,
            'feature_map': net.features,
            'samples': len(ds),
            'trials': len(ds.trials),
            'successful_trials': sum(t.success for t in ds.trials),
            'seeds': sorted({t.seed for t in ds.trials}),
            'gamma': gamma,
            'beta': beta,
            'score_weight': score_weight,
            **info,
        }
    )
    return _export(net, out_dir, name, len(ds), len(ds.trials), loss, time.monotonic() - t0, task)


__all__ = ['train_awr', 'advantage_weights', 'returns']
