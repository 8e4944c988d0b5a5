"""Behaviour cloning: a small MLP trained with torch on the CPU, exported for the numpy runtime.

    result = train_bc(build_dataset(bag_root), out_dir)       # -> BCResult(path, sha256, ...)
    code = learned_policy_source(result.path, result.sha256, regime='behaviour_cloning')

The network maps the dataset's feature map (the task's `runtime.feature_map(ds.feature_map)`: camera-derived
task state + agent position, possibly with a one-step history) to the task's action label (for a target
task: the safe command minus the agent position); the map's name is stored in the weights (`net.features`).
Training: inputs and outputs standardised, MSE (optionally weighted
per sample: offline RL reuses `train_mlp` with advantage weights), Adam, full-batch epochs on shuffled
minibatches, one torch thread. torch is imported inside the functions, so `enpire_agents` imports
without it; inference never needs it (the task's numpy runtime, `task_learning(task).runtime`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enpire_agents.regimes import task_learning


@dataclass
class BCResult:
    path: str
    sha256: str
    samples: int
    trials: int
    final_loss: float
    seconds: float
    info: dict = field(default_factory=dict)


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def make_torch_mlp(n_in: int, n_out: int, hidden=(128, 128), activation: str = 'relu'):
    torch = _torch()
    layers, width = [], n_in
    act = torch.nn.ReLU if activation == 'relu' else torch.nn.Tanh
    for h in hidden:
        layers += [torch.nn.Linear(width, h), act()]
        width = h
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


def to_numpy_mlp(
    model,
    activation: str,
    in_mean,
    in_std,
    out_mean,
    out_std,
    meta: dict | None = None,
    out_tanh: bool = False,
    out_clip: float = 0.0,
    task: str | None = None,
):
    """The torch Sequential of Linear layers (+ activations) as the task runtime's `MLP`."""
    torch = _torch()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    return task_learning(task).runtime.MLP(
        [m.weight.detach().double().numpy().T.copy() for m in linears],
        [m.bias.detach().double().numpy().copy() for m in linears],
        activation=activation,
        in_mean=in_mean,
        in_std=in_std,
        out_mean=out_mean,
        out_std=out_std,
        out_tanh=out_tanh,
        out_clip=out_clip,
        meta=meta,
    )


def torch_forward(model, net, x: np.ndarray) -> np.ndarray:
    """The torch model's output on raw features `x`, de-normalised like the numpy runtime (for tests)."""
    torch = _torch()
    with torch.no_grad():
        h = torch.as_tensor((np.atleast_2d(x) - net.in_mean) / net.in_std, dtype=torch.float32)
        y = model(h).double().numpy()
    if net.out_tanh:
        y = np.tanh(y)
    return y * net.out_std + net.out_mean


def train_mlp(
    obs: np.ndarray,
    target: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    hidden=(128, 128),
    activation: str = 'relu',
    epochs: int = 200,
    batch: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    seed: int = 0,
    max_seconds: float | None = None,
    task: str | None = None,
):
    """(torch model, numpy MLP, final loss) fitting target ~ f(obs); MSE on standardised values."""
    torch = _torch()
    torch.manual_seed(seed)
    obs = np.asarray(obs, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    in_mean, in_std = obs.mean(0), obs.std(0) + 1e-6
    out_mean, out_std = target.mean(0), target.std(0) + 1e-6
    x = torch.as_tensor((obs - in_mean) / in_std, dtype=torch.float32)
    y = torch.as_tensor((target - out_mean) / out_std, dtype=torch.float32)
    w = torch.ones(len(x)) if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
    w = w / w.mean().clamp_min(1e-9)
    model = make_torch_mlp(obs.shape[1], target.shape[1], hidden, activation)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.monotonic()
    loss_value = float('nan')
    for _epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            loss = ((model(x[idx]) - y[idx]) ** 2).sum(1).mul(w[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        loss_value = total / len(x)
        if max_seconds is not None and time.monotonic() - t0 > max_seconds:
            break
    net = to_numpy_mlp(model, activation, in_mean, in_std, out_mean, out_std, task=task)
    return model, net, loss_value


def train_bc(
    ds,
    out_dir: str | Path,
    *,
    name: str = 'bc',
    hidden=(128, 128),
    epochs: int = 150,
    seed: int = 0,
    max_seconds: float | None = 60.0,
    sample_weight=None,
    regime: str = 'behaviour_cloning',
    extra_meta: dict | None = None,
) -> BCResult:
    """Train on a `dataset.Dataset` and export `<out_dir>/<name>_<sha12>.npz` (world-readable)."""
    if len(ds) == 0:
        raise ValueError('empty dataset: no (successful) trial to learn from')
    t0 = time.monotonic()
    task = getattr(ds, 'task', None)
    model, net, loss = train_mlp(
        ds.obs, ds.act, sample_weight, hidden=hidden, epochs=epochs, seed=seed, max_seconds=max_seconds,
        task=task,
    )
    net.features = getattr(ds, 'feature_map', None) or task_learning(task).runtime.FEATURES
    net.meta.update(
        {
            'regime': regime,
            'features': ds.features,
            'feature_map': net.features,
            'samples': len(ds),
            'trials': len(ds.trials),
            'seeds': sorted({t.seed for t in ds.trials}),
            'policies': sorted({t.policy_sha256 for t in ds.trials}),
            'final_loss': loss,
            **(extra_meta or {}),
        }
    )
    return _export(net, out_dir, name, len(ds), len(ds.trials), loss, time.monotonic() - t0, task)


def _export(net, out_dir, name, samples, trials, loss, seconds, task: str | None = None) -> BCResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)
    tmp = out / f'{name}_tmp.npz'
    digest = task_learning(task).runtime.export_mlp(net, tmp)
    path = out / f'{name}_{digest[:12]}.npz'
    tmp.replace(path)
    return BCResult(
        path=str(path.resolve()),
        sha256=digest,
        samples=samples,
        trials=trials,
        final_loss=float(loss),
        seconds=float(seconds),
        info=dict(net.meta),
    )


def learned_policy_source(
    path: str, sha256: str, regime: str = 'behaviour_cloning', note: str = '', camera: str = 'top',
    task: str | None = None,
) -> str:
    """A complete policy source running the exported MLP (the task's template; passes code_check.check_code).

    `camera`: whose frame gives the task state (the dataset's camera; the trial server hands the policy
    every camera, and the task's locator alone would take the first by name, the coarser oblique view).
    """
    note = (note or f'MLP from {Path(path).name}').replace('"""', "'''").replace('\n', ' ')[:300]
    template = task_learning(task).learned_policy_template
    return template.format(regime=regime, note=note, path=str(path), sha=sha256, camera=camera)


__all__ = [
    'BCResult',
    'train_mlp',
    'train_bc',
    'make_torch_mlp',
    'to_numpy_mlp',
    'torch_forward',
    'learned_policy_source',
]
