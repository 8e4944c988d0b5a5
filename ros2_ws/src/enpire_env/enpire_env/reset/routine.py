"""The pluggable reset routine: how a cell is made to reach a target state. Pure: no rclpy here.

Built in (in `enpire_env.reset_node`): `mock_placement`, which calls the cell's
`mock_hardware/place_objects` service (a simulated gantry or person puts the objects where asked).

Hook for a real cell: write a class with a `place(target, attempt) -> PlacementOutcome` method (e.g. a
pick-and-place script driving the robot, or a prompt to an operator that returns when confirmed) and a
factory `factory(node, config) -> routine` taking the reset node (for clients, logging) and the
`ResetConfig`; then name it in the task's `ResetSpec.placement` or, for one cell, set
`routine: my_pkg.my_module:factory` in config/reset.yaml. The routine only moves
things: verification from the cameras, the tolerance and the retries stay in the reset node, so a
routine cannot declare its own success.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from enpire_common.task import InitialState


@dataclass
class PlacementOutcome:
    ok: bool
    message: str = ''
    stamp: float | None = None   # cell time the placement took effect, if known (frames must be newer)


@runtime_checkable
class ResetRoutine(Protocol):
    name: str

    def place(self, target: InitialState, attempt: int) -> PlacementOutcome:
        """Move the objects toward `target`; may block; must not raise for ordinary failures."""
        ...


def load_routine_factory(spec: str, builtins: dict[str, Callable[..., Any]]) -> Callable[..., Any]:
    """Resolve 'name' from builtins, or 'package.module:attr' by import. Raises ValueError with a reason."""
    if spec in builtins:
        return builtins[spec]
    module_name, sep, attr = spec.partition(':')
    if not sep or not module_name or not attr:
        raise ValueError(f'unknown reset routine {spec!r}; expected one of {sorted(builtins)} '
                         f"or 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f'cannot load reset routine {spec!r}: {exc}') from exc
    if not callable(factory):
        raise ValueError(f'reset routine {spec!r} is not callable')
    return factory
