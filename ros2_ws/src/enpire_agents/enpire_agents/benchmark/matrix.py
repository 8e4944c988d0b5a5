"""A benchmark matrix as one pydantic config (YAML), and its expansion into runs (no rclpy, no I/O but YAML).

    experiment: ../ros2_ws/src/enpire_agents/config/demo.yaml   # the base experiment, relative to this file
    overrides: {trial_time_budget_s: 120}                        # dotted keys, applied to every run
    tasks: [<task>]                 # installed tasks (default: the base experiment's task)
    backends:
      - {name: offline, agent: {backend: offline}}
      - {name: gpt, agent: {backend: openai, model: gpt-5.1}, transcripts: record}
    team_sizes: [1, 4, 8]
    cells_per_team: paired          # team of n on n cells; or a list of cell counts crossed with the sizes
    repeats: 3
    pacing: real_time               # real_time: cells step at 10 Hz like robots; as_fast: no waiting
    time_axis: wall                 # what time to success is on: wall, or fleet (below)
    time_cap_s: 3600                # per run, on the time axis (default: wall_clock_cap_s)
    wall_clock_cap_s: 1800          # per run, on the wall clock, whatever the time axis
    held_out_confirmation: false    # the bar met on improvement trials ends a run (see below)
    record: false                   # trial bags; off whatever the base experiment says (the demo's records)

Runs are ordered repeat by repeat, so a matrix cut short still has every cell of the matrix once.
Repeat r of every configuration runs with backend seed `seed + r`.

`time_axis: fleet` (with `pacing: as_fast`): the cells step in lockstep as fast as the machine allows,
and a run's times (time to success, the curves, MRU) are on the fleet clock
(`enpire_rollout.scheduler.FleetClock`): each trial holds its cell for its duration on the cell's clock
(the trial server's node clock: sim time on a simulated cell), a trial starts when its idea
exists and its cell is free, and the team's elapsed time is the latest finish it waited on: the time
a fleet of real cells would take for the same trials in parallel. The agents' thinking is wall time,
reported apart.

Held-out confirmation is off by default here: a run's time to success is when the team first holds a
policy meeting the bar on its improvement trials (the research-progress curve), and the run stops
there. At 10 Hz real time, 100 held-out rollouts would take longer than the research itself.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal, get_args

import yaml
from enpire_common import task_registry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from enpire_agents.experiment import (
    AgentSpec,
    BackendKind,
    ExperimentConfig,
    ExperimentConfigError,
    load_experiment,
)

LLM_BACKENDS = ('openai', 'anthropic', 'openai_compatible')
TranscriptMode = Literal['off', 'record', 'replay']


class MatrixConfigError(ValueError):
    """A matrix that cannot be run, with a message that says which field and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class BackendEntry(_Strict):
    """One column of the comparison: a label, the agent spec every team member gets, transcripts."""
    name: str = Field(pattern=r'^[A-Za-z0-9_.-]+$')
    agent: AgentSpec
    transcripts: TranscriptMode = 'off'     # record: write each agent's exchanges; replay: serve them back

    @field_validator('agent', mode='before')
    @classmethod
    def _known_backend(cls, agent):
        kind = agent.get('backend', 'offline') if isinstance(agent, dict) else None
        if kind is not None and kind not in get_args(BackendKind):
            raise ValueError(f'unknown backend {kind!r}; expected one of {list(get_args(BackendKind))}')
        return agent

    @model_validator(mode='after')
    def _transcripts_need_a_model(self):
        if self.transcripts != 'off' and self.agent.backend not in LLM_BACKENDS:
            raise ValueError(f'transcripts ({self.transcripts}) are for LLM backends {LLM_BACKENDS}, '
                             f'not {self.agent.backend!r}')
        if self.transcripts != 'off' and self.agent.tools:
            raise ValueError(f'transcripts ({self.transcripts}) record one-shot proposals; a tool-driven '
                             'agent (tools: true) cannot be recorded or replayed yet')
        return self


class MatrixConfig(_Strict):
    name: str = Field(default='autoenvbench', pattern=r'^[A-Za-z0-9_.-]+$')
    experiment: str                                       # base experiment YAML (relative to the matrix file)
    overrides: dict[str, object] = Field(default_factory=dict)
    tasks: list[str] | None = None                        # None: the base experiment's task
    backends: list[BackendEntry]
    team_sizes: list[int] = Field(default_factory=lambda: [1, 4, 8])
    cells_per_team: Literal['paired'] | list[int] = 'paired'
    repeats: int = Field(default=3, ge=1)
    pacing: Literal['real_time', 'as_fast'] = 'real_time'
    time_axis: Literal['wall', 'fleet'] = 'wall'
    time_cap_s: float | None = Field(default=None, gt=0)     # on the time axis; None: wall_clock_cap_s
    wall_clock_cap_s: float = Field(default=1800.0, gt=0)
    held_out_confirmation: bool = False
    record: bool = False                                  # trial bags, whatever the base says: off by default
    transcript_dir: str | None = None                     # default: <output>/transcripts
    seed: int = 0
    band_percentiles: tuple[float, float] = (0.0, 100.0)  # the curves' band over repeats (min..max)
    # Published figures set beside ours in the final JSON as `article_<key>` (e.g. speedup_1_to_8)
    article: dict[str, float] = Field(default_factory=dict)

    @field_validator('team_sizes')
    @classmethod
    def _sizes(cls, sizes):
        if not sizes:
            raise ValueError('at least one team size')
        bad = [n for n in sizes if n < 1]
        if bad:
            raise ValueError(f'team sizes must be >= 1, got {bad}')
        if len(set(sizes)) != len(sizes):
            raise ValueError(f'team sizes repeat: {sizes}')
        return sizes

    @field_validator('tasks')
    @classmethod
    def _tasks(cls, tasks):
        if tasks is None:
            return tasks
        known = task_registry.names()
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise ValueError(f'unknown task(s) {unknown}; expected one of {list(known)}')
        return tasks

    @field_validator('cells_per_team')
    @classmethod
    def _cells(cls, cells):
        if isinstance(cells, list) and (not cells or any(n < 1 for n in cells)):
            raise ValueError(f'cell counts must be >= 1, got {cells}')
        return cells

    @field_validator('backends', 'tasks')
    @classmethod
    def _unique(cls, items):
        if items is None:
            return items
        names = [getattr(i, 'name', i) for i in items]
        if not names:
            raise ValueError('at least one entry')
        if len(set(names)) != len(names):
            raise ValueError(f'names repeat: {names}')
        return items

    @field_validator('band_percentiles')
    @classmethod
    def _band(cls, band):
        if not 0.0 <= band[0] <= band[1] <= 100.0:
            raise ValueError(f'need 0 <= low <= high <= 100, got {band}')
        return band

    @model_validator(mode='after')
    def _fleet_time_needs_lockstep(self):
        if self.time_axis == 'fleet' and self.pacing != 'as_fast':
            raise ValueError('time_axis: fleet places trials by their cell-time durations; it needs '
                             'pacing: as_fast (real_time cells are read on the wall clock)')
        return self

    def cell_counts(self, team_size: int) -> list[int]:
        return [team_size] if self.cells_per_team == 'paired' else list(self.cells_per_team)


class RunSpec(_Strict):
    """One run of the matrix: what it sets on the base experiment."""
    run_id: str
    task: str
    backend: str
    agent: AgentSpec
    transcripts: TranscriptMode
    team_size: int
    cells: int
    repeat: int
    pacing: str
    seed: int
    cap_s: float                         # on the time axis
    held_out_confirmation: bool
    time_axis: str = 'wall'
    wall_cap_s: float | None = None      # on the wall clock (None: cap_s, the time axis being the wall)

    @property
    def group(self) -> tuple[str, str, int, int, str]:
        """The configuration this run repeats (task, backend, team size, cells, pacing)."""
        return self.task, self.backend, self.team_size, self.cells, self.pacing

    def overrides(self) -> dict[str, object]:
        """Dotted overrides of the base experiment (on top of the matrix's own `overrides`)."""
        return {'name': self.run_id, 'task': self.task, 'cells': [f'cell_{i}' for i in range(self.cells)],
                'team.size': self.team_size, 'team.agents': [self.agent.model_dump(exclude_none=True)],
                'pacing': self.pacing, 'seed': self.seed, 'budgets.wall_clock_s': self.cap_s,
                'success_bar.held_out_confirmation': self.held_out_confirmation}


class Matrix(BaseModel):
    """A validated matrix config with its location (relative paths resolve against it)."""
    config: MatrixConfig
    path: Path

    @property
    def experiment_path(self) -> Path:
        return (self.path.parent / self.config.experiment).resolve()

    @property
    def tasks(self) -> list[str]:
        """The tasks run: the matrix's, else the base experiment's (its `task`)."""
        if self.config.tasks is not None:
            return self.config.tasks
        data = yaml.safe_load(self.experiment_path.read_text()) or {}
        try:
            return [load_experiment(data).task]
        except ExperimentConfigError as exc:
            raise MatrixConfigError(f'{self.path}: base experiment: {exc}') from None

    def runs(self) -> list[RunSpec]:
        cfg = self.config
        out = []
        for repeat in range(cfg.repeats):
            for task in self.tasks:
                for entry in cfg.backends:
                    for size in cfg.team_sizes:
                        for cells in cfg.cell_counts(size):
                            out.append(RunSpec(
                                run_id=f'{task}-{entry.name}-team{size}-cells{cells}-r{repeat}', task=task,
                                backend=entry.name, agent=entry.agent, transcripts=entry.transcripts,
                                team_size=size, cells=cells, repeat=repeat, pacing=cfg.pacing,
                                seed=cfg.seed + repeat, cap_s=cfg.time_cap_s or cfg.wall_clock_cap_s,
                                held_out_confirmation=cfg.held_out_confirmation, time_axis=cfg.time_axis,
                                wall_cap_s=cfg.wall_clock_cap_s))
        return out

    def experiment(self, run: RunSpec) -> ExperimentConfig:
        """The run's experiment: the base YAML, the matrix's overrides, then the run's own."""
        data = yaml.safe_load(self.experiment_path.read_text()) or {}
        overrides = {'record': self.config.record, **self.config.overrides, **run.overrides()}
        for dotted, value in overrides.items():
            target = data
            *parents, leaf = dotted.split('.')
            for key in parents:
                target = target.setdefault(key, {})
            target[leaf] = copy.deepcopy(value)
        try:
            return load_experiment(data)
        except ExperimentConfigError as exc:
            raise MatrixConfigError(f'{self.path}: run {run.run_id}: {exc}') from None

    def with_fields(self, **fields) -> Matrix:
        """The same matrix with some top-level fields replaced (validated again)."""
        try:
            config = MatrixConfig.model_validate({**self.config.model_dump(), **fields})
        except ValidationError as exc:
            raise MatrixConfigError(f'{self.path}: invalid benchmark matrix: {_problems(exc)}') from None
        return Matrix(config=config, path=self.path)

    def with_replay(self, transcript_dir: str | Path) -> Matrix:
        """The same matrix, every LLM backend served from recorded transcripts (no keys, no network)."""
        cfg = self.config.model_dump()
        cfg['transcript_dir'] = str(Path(transcript_dir).resolve())
        for entry in cfg['backends']:
            if entry['agent']['backend'] in LLM_BACKENDS:
                entry['transcripts'] = 'replay'
        return Matrix(config=MatrixConfig.model_validate(cfg), path=self.path)


def _problems(exc: ValidationError) -> str:
    return '; '.join(f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg']}" for e in exc.errors())


def load_matrix(path: str | Path) -> Matrix:
    """Load a matrix YAML, validate it, and check that every run's experiment is valid too."""
    path = Path(path).resolve()
    if not path.is_file():
        raise MatrixConfigError(f'benchmark matrix {path} does not exist')
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MatrixConfigError(f'{path}: not valid YAML: {exc}') from None
    if not isinstance(data, dict):
        raise MatrixConfigError(f'{path}: expected a mapping at the top level')
    try:
        matrix = Matrix(config=MatrixConfig.model_validate(data), path=path)
    except ValidationError as exc:
        raise MatrixConfigError(f'{path}: invalid benchmark matrix: {_problems(exc)}') from None
    if not matrix.experiment_path.is_file():
        raise MatrixConfigError(f'{path}: base experiment {matrix.experiment_path} does not exist')
    for run in matrix.runs():
        matrix.experiment(run)
    return matrix
