"""The task contract: everything a task brings to a cell, as plain data and lazy references.

A task is a folder (a Python package) that exposes one `Task` through the entry-point group
`enpire.tasks` (see `enpire_common.task_registry`), as Gymnasium's registry finds environments. EN, R and
PI+E ask the registry for a task by name and never import a task's package: the heavy parts (simulator,
verifier, strategy library, perception) are `module:attribute` references resolved only by the process
that needs them, so a safety node never loads a strategy library and a task package may build on any
framework layer without an import running back up.

Vectors cross the graph generically (`CellState.task_state`, `Command.values`, `PlaceObjects.objects`);
the `Task` names their entries, their units and their frame, so a bag is readable without the task's code.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Ref = str  # 'package.module:attribute', resolved with `resolve`


def resolve(ref: Ref) -> Any:
    """The object a `module:attribute` reference names (attribute may be dotted)."""
    module_name, sep, attribute = ref.partition(':')
    if not sep or not module_name or not attribute:
        raise ValueError(f'a task reference is "module:attribute", got {ref!r}')
    target: Any = importlib.import_module(module_name)
    for part in attribute.split('.'):
        target = getattr(target, part)
    return target


@dataclass(frozen=True)
class ActionSpec:
    """What `Policy.act` returns: a vector in `low..high`, with a name, unit and frame per entry.

    `space()` is the Gymnasium `Box` (built on demand so this module needs no gymnasium at import)."""

    names: tuple[str, ...]
    units: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    frame: str

    def __post_init__(self):
        n = len(self.names)
        if not (len(self.units) == len(self.low) == len(self.high) == n) or n == 0:
            raise ValueError('an action spec needs one unit, low and high per named entry')

    @property
    def size(self) -> int:
        return len(self.names)

    def space(self):
        from gymnasium.spaces import Box
        return Box(low=np.asarray(self.low, dtype=np.float64), high=np.asarray(self.high, dtype=np.float64),
                   dtype=np.float64)


@dataclass(frozen=True)
class ObservationSpec:
    """What a policy sees: camera names (frames, their CameraInfo and table mapping) and proprioception."""

    cameras: tuple[str, ...]
    proprioception: tuple[str, ...]        # names of the tool/joint values in an observation
    proprioception_units: tuple[str, ...]
    image_size: tuple[int, int] = (96, 96)  # width, height of the simulated cell's cameras


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene placement: a name and its pose vector in the task frame."""

    name: str
    pose: tuple[float, ...]


class InitialState(Protocol):
    """Where a trial starts; a task's own class may carry more, but it must give these."""

    seed: int | None
    distribution: str | None

    def scene(self) -> tuple[SceneObject, ...]: ...   # objects to place
    def tool(self) -> tuple[float, ...]: ...          # where the tool starts


@dataclass(frozen=True)
class ResetSpec:
    """How a reset places the scene and checks it from the cameras."""

    placement: Ref                          # the placement routine: a built-in name of the reset node
                                            # ('mock_placement') or 'module:factory' (see enpire_env.reset)
    estimator: Ref                          # the cameras' task-state estimates -> one fused task state
    tolerances: Mapping[str, float] = field(default_factory=dict)   # error name -> largest allowed value
    errors: Ref | None = None               # (target state, achieved state) -> {error name: value}
    # A 3-D scene is located from every calibrated view at once, not fused from per-camera estimates: then
    # `estimator` is `(images: {camera: RGB}, cameras: {camera: CameraModel}) -> (state | None, why not)`,
    # run where the frames and calibrations are (the verify service, asked with `locate_scene`).
    multi_view: bool = False


@dataclass(frozen=True)
class VerifierSpec:
    """The per-camera judge and the fusion of their verdicts (see enpire_env.verification)."""

    judge: Ref                              # (settings, detector, segmenter) -> the per-camera Judge
    config: Ref | None = None               # -> path of the verifier's settings YAML
    settings: Ref | None = None             # the settings class (extends enpire_env's VerifyConfig)
    dataset: Ref | None = None              # writes a labelled detector training set (enpire_env.perception)
    # Fusion: the rule, the fewest usable cameras, the confidence a fused success needs, and how far a lone
    # camera's lower bound must clear the threshold (in its own margins) beside uncertain ones.
    fusion_rule: str = 'unanimous'
    # A task's own fusion in place of the rule: (judgements, expected=, cameras=, layout=) -> FusedJudgement,
    # given every camera's calibrated model and the placed layout (a 3-D task locates what it judges).
    fusion: Ref | None = None
    min_cameras: int = 1
    success_confidence: float = 0.4
    lone_margin_factor: float = 1.25


@dataclass(frozen=True)
class Task:
    """One task: a name and every piece EN, R and PI+E need, with no rclpy anywhere in it."""

    name: str
    title: str
    action: ActionSpec
    observation: ObservationSpec
    task_state: tuple[str, ...]             # entries of the task-state vector (CellState, GroundTruth)
    task_state_units: tuple[str, ...]
    distributions: tuple[str, ...]          # the first is the in-distribution one
    control_hz: float
    episode_steps: int
    sample_initial_state: Ref               # (seed, distribution) -> InitialState, deterministic in the seed
    success_rule: Ref                       # task_state -> (score, success): the task rule, ground truth
    reset: ResetSpec
    verifier: VerifierSpec
    safety_limits: Ref                      # -> path of the safety-limits YAML
    policy_imports: frozenset[str]          # modules a policy of this task may import (beyond the stdlib set)
    empty_policy: Ref                       # -> the source every experiment starts from
    prompt: Ref                             # -> the task's description for LLM backends
    strategies: Ref                         # the offline backend's strategy library
    simulator: Ref                          # factory of the simulated cell's physics and cameras
    config_dir: Ref | None = None           # -> the task's config folder
    in_process: Ref | None = None           # -> a harness evaluating a policy class in one process (dev tool)
    command_filter: Ref | None = None       # (limits file) -> the task's own CommandRule for the safety node
                                            # (enpire_env.safety.filter; a displacement action's workspace)
    extras: Mapping[str, Ref] = field(default_factory=dict)   # task-specific references by name

    def __post_init__(self):
        if len(self.task_state) != len(self.task_state_units):
            raise ValueError(f'task {self.name!r}: one unit per task-state entry')
        if not self.distributions:
            raise ValueError(f'task {self.name!r}: at least one initial-state distribution')

    def load(self, part: str) -> Any:
        """Resolve one of the task's references by field name (or an `extras` key)."""
        ref = self.extras[part] if part in self.extras else getattr(self, part)
        if isinstance(ref, (ResetSpec, VerifierSpec)):
            raise ValueError(f'{part!r} holds several references; resolve its fields')
        return resolve(ref)

    def config_path(self, name: str) -> Path:
        if self.config_dir is None:
            raise ValueError(f'task {self.name!r} has no config folder')
        return Path(resolve(self.config_dir)) / name


def config_dir_of(package: str, source_config: str | Path) -> str:
    """A task package's config folder: the installed one (share/<package>/config), else `source_config`
    (the source tree's, for a package used from its folder)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(package)) / 'config'
        if installed.is_dir():
            return str(installed)
    except (ImportError, LookupError, ValueError):
        pass
    return str(source_config)
