"""The numpy runtime of learned policies: load an MLP exported as .npz and run it (pure numpy, no torch).

A learned policy (behaviour cloning, offline RL, online RL) is trained outside the sandbox with torch and
exported to one .npz file; its policy source then does, inside the sandbox:

    from enpire_rollout import learned_policy as lp
    NET = lp.load_mlp('/abs/path/bc_1a2b3c.npz', sha256='1a2b3c...')     # once, at load or reset
    action = NET(features)                                              # the task's features -> outputs

The features a network was trained on are the task's (its `learned_policy` module names them; the name
travels with the weights as `features`). This module belongs to the cell, not to the agent: the agent
writes the policy source and the weights, never the loader or the feature definition, so what was trained
and what runs cannot drift apart. `sha256` pins the weights to the policy source (the policy hash then
identifies the weights too). Reading a file is allowed in the sandbox (writing outside its scratch folder
is not); the file must be readable by the sandbox user, who is `nobody` when the runner is root:
`export_mlp` makes the file world-readable, and every folder on its path must be open to others (0755;
/tmp/pytest-of-root and mkdtemp folders are 0700 and are not).

File layout (all arrays, `allow_pickle=False`): `n_layers`, `W0, b0, ... W{n-1}, b{n-1}` (W: in x out),
`activation` ('relu' | 'tanh'), `in_mean`, `in_std`, `out_mean`, `out_std`, `out_tanh` (1: the network's
output is squashed by tanh before de-normalising), `out_clip` (>0: clipped to +-out_clip
then), `features` (name of the feature map), `meta` (JSON).
"""

from __future__ import annotations

# np.load of an .npz needs these; the sandbox refuses modules first imported after its lock-down
import encodings.cp437  # noqa: F401  (zip member names)
import hashlib
import json
import zipfile  # noqa: F401

import numpy as np

MAX_FILE_BYTES = 32 * 1024 * 1024
_CACHE: dict[tuple[str, str], MLP] = {}


class MLP:
    """A feed-forward network with input/output normalisation; `net(x)` maps features to outputs."""

    def __init__(
        self,
        weights: list[np.ndarray],
        biases: list[np.ndarray],
        activation: str = 'relu',
        in_mean=None,
        in_std=None,
        out_mean=None,
        out_std=None,
        out_tanh: bool = False,
        out_clip: float = 0.0,
        features: str = '',
        meta: dict | None = None,
    ):
        if len(weights) != len(biases) or not weights:
            raise ValueError('an MLP needs as many bias vectors as weight matrices (at least one)')
        if activation not in ('relu', 'tanh'):
            raise ValueError(f'unknown activation {activation!r}')
        self.weights = [np.asarray(w, dtype=np.float64) for w in weights]
        self.biases = [np.asarray(b, dtype=np.float64).reshape(-1) for b in biases]
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or w.shape[1] != b.shape[0] or (i and w.shape[0] != self.weights[i - 1].shape[1]):
                raise ValueError(f'layer {i}: shapes {w.shape} / {b.shape} do not chain')
        n_in, n_out = self.weights[0].shape[0], self.weights[-1].shape[1]
        self.activation = activation
        self.in_mean = (
            np.zeros(n_in) if in_mean is None else np.asarray(in_mean, dtype=np.float64).reshape(-1)
        )
        self.in_std = np.ones(n_in) if in_std is None else np.asarray(in_std, dtype=np.float64).reshape(-1)
        self.out_mean = (
            np.zeros(n_out) if out_mean is None else np.asarray(out_mean, dtype=np.float64).reshape(-1)
        )
        self.out_std = (
            np.ones(n_out) if out_std is None else np.asarray(out_std, dtype=np.float64).reshape(-1)
        )
        self.out_tanh = bool(out_tanh)
        self.out_clip = float(out_clip)
        self.features = features
        self.meta = dict(meta or {})

    @property
    def n_in(self) -> int:
        return self.weights[0].shape[0]

    @property
    def n_out(self) -> int:
        return self.weights[-1].shape[1]

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        h = x.reshape(1, -1) if single else x
        h = (h - self.in_mean) / self.in_std
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < last:
                h = np.maximum(h, 0.0) if self.activation == 'relu' else np.tanh(h)
        if self.out_tanh:
            h = np.tanh(h)
        if self.out_clip > 0:
            h = np.clip(h, -self.out_clip, self.out_clip)
        y = h * self.out_std + self.out_mean
        return y[0] if single else y

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            'n_layers': np.array(len(self.weights)),
            'activation': np.array(self.activation),
            'in_mean': self.in_mean,
            'in_std': self.in_std,
            'out_mean': self.out_mean,
            'out_std': self.out_std,
            'out_tanh': np.array(int(self.out_tanh)),
            'out_clip': np.array(self.out_clip),
            'features': np.array(self.features),
            'meta': np.array(json.dumps(self.meta, default=str)),
        }
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out[f'W{i}'], out[f'b{i}'] = w, b
        return out


def _digest(path: str) -> str:
    with open(path, 'rb') as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f'{path}: weights file larger than {MAX_FILE_BYTES} bytes')
    return hashlib.sha256(data).hexdigest()


def load_mlp(path: str, sha256: str | None = None) -> MLP:
    """The MLP in `path` (an .npz written by `export_mlp`); with `sha256`, refused unless the file matches."""
    path = str(path)
    if not path.endswith('.npz'):
        raise ValueError(f'{path}: a learned policy loads .npz files only')
    digest = _digest(path)
    if sha256 is not None and digest != str(sha256).lower():
        raise ValueError(f'{path}: sha256 {digest[:12]}... does not match the policy ({str(sha256)[:12]}...)')
    key = (path, digest)
    if key in _CACHE:
        return _CACHE[key]
    with np.load(path, allow_pickle=False) as z:
        n = int(z['n_layers'])
        net = MLP(
            [z[f'W{i}'] for i in range(n)],
            [z[f'b{i}'] for i in range(n)],
            activation=str(z['activation']),
            in_mean=z['in_mean'],
            in_std=z['in_std'],
            out_mean=z['out_mean'],
            out_std=z['out_std'],
            out_tanh=bool(int(z['out_tanh'])),
            out_clip=float(z['out_clip']) if 'out_clip' in z.files else 0.0,
            features=str(z['features']),
            meta=json.loads(str(z['meta'])) if 'meta' in z.files else {},
        )
    net.meta['sha256'] = digest
    _CACHE[key] = net
    return net


def export_mlp(net: MLP, path) -> str:
    """Write `net` to `path` (.npz, world-readable so the sandbox user can load it); returns its sha256."""
    import os

    path = str(path)
    if not path.endswith('.npz'):
        raise ValueError('the weights file must end in .npz')
    np.savez(path, **net.arrays())
    os.chmod(path, 0o644)
    return _digest(path)


__all__ = ['MLP', 'load_mlp', 'export_mlp']
