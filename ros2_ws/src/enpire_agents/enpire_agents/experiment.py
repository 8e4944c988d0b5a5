"""An experiment, as one pydantic config loaded from YAML (the only loader).

An experiment names the task, the cells the team shares, the team and its backends, the budgets, the
success bar and two disjoint seed sets: improvement seeds (what agents see while they improve) and
evaluation seeds (held out; only the confirmation of the success bar uses them, never an agent).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from enpire_common import task_registry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# 'regimes': behaviour cloning, offline RL, online RL or tool calling, chosen per hypothesis.
BackendKind = Literal['offline', 'openai', 'anthropic', 'openai_compatible', 'regimes']


class ExperimentConfigError(ValueError):
    """A config that cannot be run, with a message that says which field and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class SeedRange(_Strict):
    """Seeds `start, start+1, ..., start+count-1`, or an explicit list (exactly one of the two)."""

    start: int | None = None
    count: int | None = Field(default=None, ge=1)
    values: list[int] | None = None

    @model_validator(mode='after')
    def _one_form(self):
        if (self.values is None) == (self.start is None):
            raise ValueError('give either `values` or `start` with `count`')
        if self.start is not None and self.count is None:
            raise ValueError('`start` needs `count`')
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError('seed values repeat')
        if any(s < 0 for s in self.seeds()):
            raise ValueError('seeds must be >= 0')
        return self

    def seeds(self) -> list[int]:
        if self.values is not None:
            return list(self.values)
        return list(range(self.start, self.start + self.count))


class AgentSpec(_Strict):
    backend: BackendKind = 'offline'
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None        # name of the environment variable holding the key, never the key
    bag_root: str | None = None           # 'regimes': trial bags to learn from (default /tmp/enpire_bags)
    temperature: float = 0.7
    tools: bool = False                   # tool-driven: multi-turn sessions through the cell's tools

    @model_validator(mode='after')
    def _backend_needs(self):
        if self.backend in ('openai', 'anthropic', 'openai_compatible') and not self.model:
            raise ValueError(f'backend {self.backend!r} needs `model`')
        if self.backend == 'openai_compatible' and not self.base_url:
            raise ValueError('backend openai_compatible needs `base_url`')
        if self.tools and self.backend == 'regimes':
            raise ValueError('backend regimes has no tool-driven agent (tools: true)')
        return self


class TeamConfig(_Strict):
    size: int = Field(default=1, ge=1, le=64)
    agents: list[AgentSpec] = Field(default_factory=lambda: [AgentSpec()])   # cycled over the team
    reuse_margin: float = Field(default=0.05, ge=0.0, le=1.0)   # a peer must be this much better to reuse
    patience: int = Field(default=3, ge=1)                       # non-improving nodes before a line is pruned

    @field_validator('agents')
    @classmethod
    def _not_empty(cls, agents):
        if not agents:
            raise ValueError('at least one agent spec')
        return agents

    def agent_specs(self) -> list[AgentSpec]:
        return [self.agents[i % len(self.agents)] for i in range(self.size)]


class Budgets(_Strict):
    """The team's budgets. Wall-clock ones say so in their names; a trial's own budget
    (`ExperimentConfig.trial_time_budget_s`) runs on its cell's clock."""
    trials: int = Field(default=2000, ge=1)              # improvement rollouts, whole team
    robot_time_s: float = Field(default=3600.0, gt=0)    # wall s the cells were busy in trials, all cells
    tokens: int = Field(default=10_000_000, ge=1)
    wall_clock_s: float = Field(default=600.0, gt=0)     # the whole run, agents thinking included, wall s
    evaluation_wall_clock_s: float = Field(default=900.0, gt=0)   # per held-out evaluation, wall s


class SuccessBar(_Strict):
    k: int = Field(default=8, ge=1)                       # pass@k is measured with this many attempts
    pass_at_k: float = Field(default=0.99, ge=0.0, le=1.0)
    pass_at_1: float = Field(default=0.0, ge=0.0, le=1.0)
    n_eval: int = Field(default=100, ge=1)               # held-out rollouts that confirm the bar
    max_confirmations: int = Field(default=3, ge=1)      # held-out confirmations per run (robot time)
    # off (benchmarks): a node meeting the bar on its improvement trials stops the team unconfirmed
    held_out_confirmation: bool = True


class ImprovementConfig(_Strict):
    seeds: SeedRange
    trials_per_node: int = Field(default=8, ge=1)         # rollouts that score one idea
    early_stop: bool = True                               # stop scoring an idea once it cannot beat its base
    chunk: int = Field(default=2, ge=1)                   # rollouts per look when stopping early
    max_rounds: int = Field(default=50, ge=1)             # per agent


class EvaluationConfig(_Strict):
    seeds: SeedRange
    ood_seeds: SeedRange | None = None                    # held-out starts from `ood_distribution`
    ood_distribution: str = 'out_of_distribution'


class ExperimentConfig(_Strict):
    name: str = Field(pattern=r'^[A-Za-z0-9_.-]+$')
    task: str = Field(default_factory=task_registry.sole)   # an installed task (default: the only one)
    cells: list[str] = Field(default_factory=lambda: ['cell_0'])
    team: TeamConfig = Field(default_factory=TeamConfig)
    budgets: Budgets = Field(default_factory=Budgets)
    success_bar: SuccessBar = Field(default_factory=SuccessBar)
    attempts: int = Field(default=8, ge=1)               # k of every rollout
    steps_per_attempt: int = Field(default=300, ge=1)
    trial_time_budget_s: float = Field(default=0.0, ge=0.0)   # per trial, cell time (sim time); 0: the cell's
    pacing: Literal['as_fast', 'real_time'] = 'as_fast'   # how the simulated cells step (demo, bench)
    record: bool = False                                  # a bag per improvement trial
    distribution: str = 'in_distribution'                 # where improvement and evaluation starts come from
    improvement: ImprovementConfig
    evaluation: EvaluationConfig
    seed: int = 0                                         # the backends' own seed

    @field_validator('cells')
    @classmethod
    def _cells(cls, cells):
        if not cells:
            raise ValueError('at least one cell')
        names = [c.strip('/') for c in cells]
        if any(not n or '/' in n for n in names):
            raise ValueError(f'cell namespaces must be single names, got {cells}')
        if len(set(names)) != len(names):
            raise ValueError(f'cells repeat: {cells}')
        return names

    @field_validator('task')
    @classmethod
    def _installed_task(cls, task):
        problem = task_registry.problem(task)
        if problem:
            raise ValueError(problem)
        return task

    @model_validator(mode='after')
    def _consistent(self):
        distributions = task_registry.get(self.task).distributions
        for dist in (self.distribution, self.evaluation.ood_distribution):
            if dist not in distributions:
                raise ValueError(f'unknown distribution {dist!r} of task {self.task}; expected one of '
                                 f'{distributions}')
        if self.success_bar.k > self.attempts:
            raise ValueError(f'success_bar.k={self.success_bar.k} exceeds attempts={self.attempts}')
        improve = set(self.improvement.seeds.seeds())
        held_out = set(self.evaluation.seeds.seeds())
        if self.evaluation.ood_seeds is not None:
            held_out |= set(self.evaluation.ood_seeds.seeds())
        overlap = improve & held_out
        if overlap:
            raise ValueError(f'improvement and evaluation seeds overlap: {sorted(overlap)[:10]}')
        if len(self.evaluation.seeds.seeds()) < self.success_bar.n_eval:
            raise ValueError(f'success_bar.n_eval={self.success_bar.n_eval} but only '
                             f'{len(self.evaluation.seeds.seeds())} evaluation seeds')
        return self

    def improvement_seeds(self) -> list[int]:
        return self.improvement.seeds.seeds()

    def evaluation_seeds(self) -> list[int]:
        """The first n_eval held-out seeds (what a confirmation runs when every trial starts)."""
        return self.evaluation.seeds.seeds()[:self.success_bar.n_eval]

    def evaluation_pool(self) -> list[int]:
        """All held-out in-distribution seeds, in order: later ones replace trials a cell could not start."""
        return self.evaluation.seeds.seeds()

    def ood_seeds(self) -> list[int]:
        return self.evaluation.ood_seeds.seeds() if self.evaluation.ood_seeds else []

    def held_out_seeds(self) -> set[int]:
        return set(self.evaluation.seeds.seeds()) | set(self.ood_seeds())


def load_experiment(source: str | Path | dict, **overrides) -> ExperimentConfig:
    """Load and validate an experiment from a YAML file (or an already parsed mapping).

    `overrides` replace top-level keys (dotted keys reach into sections: `budgets.wall_clock_s=60`).
    """
    if isinstance(source, dict):
        data, where = dict(source), '<mapping>'
    else:
        path = Path(source)
        if not path.is_file():
            raise ExperimentConfigError(f'experiment config {path} does not exist')
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ExperimentConfigError(f'{path}: not valid YAML: {exc}') from exc
        where = str(path)
        if not isinstance(data, dict):
            raise ExperimentConfigError(f'{path}: expected a mapping at the top level')
    for dotted, value in overrides.items():
        target = data
        *parents, leaf = dotted.split('.')
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        problems = '; '.join(f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg']}"
                             for e in exc.errors())
        raise ExperimentConfigError(f'{where}: invalid experiment config: {problems}') from exc


def config_dir() -> Path:
    """The package's experiment configs in the source tree (the install symlinks resolve to it)."""
    return Path(__file__).resolve().parents[1] / 'config'
