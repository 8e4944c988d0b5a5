"""The genome of a strategy library (the offline backend's search space), whatever the task.

A task's library (`Task.strategies`) names its slots (one variant of policy code per slot), its numeric
parameters (`name -> (default, low, high, kind, doc)`, kind float | int | log) and which parameters each
variant reads, as a `StrategySpace`; its `Genome` is a `StrategyGenome` bound to that space. A composed
policy carries its genome on a `# GENOME:` line, so any policy a library wrote reads back.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import ClassVar

GENOME_TAG = '# GENOME: '


@dataclass(frozen=True)
class StrategySpace:
    slots: dict[str, dict[str, str]]              # slot -> variant -> its policy code
    slot_order: tuple[str, ...]
    params: dict[str, tuple]                      # name -> (default, low, high, kind, doc)
    slot_params: dict[str, dict[str, tuple[str, ...]]]   # slot -> variant -> the parameters it reads
    always_live: tuple[str, ...]                  # parameters every composition reads

    def clamp(self, name: str, value):
        _, low, high, kind, _ = self.params[name]
        v = min(max(float(value), low), high)
        if kind == 'int':
            return int(round(v))
        return float(f'{v:.5g}')

    def mutate(self, name: str, value, rng, scale: float = 1.0):
        """A random step for one parameter within its range (log-normal for 'log', normal otherwise)."""
        _, low, high, kind, _ = self.params[name]
        if kind == 'log':
            v = float(value) * math.exp(rng.normal(0.0, 0.35 * scale))
        elif kind == 'int':
            v = float(value) + rng.normal(0.0, max(1.0, 0.25 * (high - low) * scale))
        else:
            v = float(value) + rng.normal(0.0, 0.2 * (high - low) * scale)
        return self.clamp(name, v)


def _fmt(v) -> str:
    return f'{v:.4g}' if isinstance(v, float) else str(v)


@dataclass
class StrategyGenome:
    """A point in a library's space: a variant per slot and the numeric parameters (a library subclasses
    it with its `space`)."""

    space: ClassVar[StrategySpace]
    slots: dict[str, str] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)

    def full(self):
        space = self.space
        slots = {s: self.slots.get(s, next(iter(space.slots[s]))) for s in space.slot_order}
        params = {k: self.params.get(k, spec[0]) for k, spec in space.params.items()}
        return type(self)(slots, {k: space.clamp(k, v) for k, v in params.items()})

    def live_params(self) -> list[str]:
        g = self.full()
        names = list(self.space.always_live)
        for slot, variant in g.slots.items():
            names.extend(self.space.slot_params.get(slot, {}).get(variant, ()))
        return names

    def to_json(self) -> str:
        g = self.full()
        return json.dumps({'slots': g.slots, 'params': g.params}, sort_keys=True, separators=(',', ':'))

    def key(self) -> str:
        """A short hash of the genome (same behaviour -> same key)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:10]

    def describe_diff(self, other) -> str:
        a = self.full()
        if other is None:
            return ', '.join(f'{s}={v}' for s, v in a.slots.items())
        b = other.full()
        parts = [f'{s}: {b.slots[s]}->{a.slots[s]}' for s in self.space.slot_order
                 if a.slots[s] != b.slots[s]]
        parts += [f'{k}: {_fmt(b.params[k])}->{_fmt(a.params[k])}' for k in self.space.params
                  if a.params[k] != b.params[k]]
        return '; '.join(parts) or 'no change'

    def tag_line(self) -> str:
        return GENOME_TAG + self.to_json() + '\n'

    @classmethod
    def from_code(cls, code: str | None):
        """The genome on a composed source's `# GENOME:` line (None for foreign code)."""
        for line in (code or '').splitlines():
            if line.startswith(GENOME_TAG):
                try:
                    data = json.loads(line[len(GENOME_TAG):])
                    slots = {s: v for s, v in data.get('slots', {}).items()
                             if s in cls.space.slots and v in cls.space.slots[s]}
                    params = {k: v for k, v in data.get('params', {}).items() if k in cls.space.params}
                    return cls(slots, params).full()
                except (ValueError, TypeError, AttributeError):
                    return None
        return None
