"""The safety limits of a cell, loaded from YAML (`config/safety_limits.yaml`). Pure: no rclpy.

Commands are the task's action vectors in `frame_id`: `low`/`high` bound each entry, `max_step` and
`max_speed` bound the Euclidean norm of a step (in the action's units); times are seconds of the clock the
filter is given (wall time in real-time pacing, one control period per command in as-fast pacing).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class SafetyLimits(BaseModel):
    """What may reach the cell. Frozen: a running safety node never changes its limits."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    frame_id: str = Field('table', min_length=1, description='the only frame commands may be given in')
    names: tuple[str, ...] = Field((), description="the action's entry names (a cell whose joints carry "
                                   'these names is measured by its joints); empty: the tool position')
    low: tuple[float, ...] = Field(min_length=1, description='per-entry lower bound of a command')
    high: tuple[float, ...] = Field(min_length=1, description='per-entry upper bound of a command')
    max_step: float = Field(gt=0.0, description='largest distance of a command from the measured position')
    max_speed: float = Field(1000.0, gt=0.0, description='largest speed of the command (units/s)')
    max_command_rate_hz: float = Field(50.0, gt=0.0, le=10_000.0,
                                       description='commands closer together than 1/rate are rejected')
    min_command_rate_hz: float = Field(2.0, gt=0.0,
                                       description='a gap longer than 1/rate trips the watchdog')
    watchdog_action: Literal['hold', 'stop'] = 'stop'
    control_period: float = Field(0.1, gt=0.0, le=10.0, description='the cell control period (s)')

    @model_validator(mode='after')
    def _consistent(self) -> SafetyLimits:
        for name, value in self.model_dump().items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f'{name} must be finite, got {value}')
        if len(self.low) != len(self.high):
            raise ValueError(f'low has {len(self.low)} entries, high {len(self.high)}: one bound each')
        if self.names and len(self.names) != len(self.low):
            raise ValueError(f'names has {len(self.names)} entries, the bounds {len(self.low)}')
        if not all(math.isfinite(v) for v in (*self.low, *self.high)):
            raise ValueError('the bounds low and high must be finite')
        if not all(lo < hi for lo, hi in zip(self.low, self.high, strict=True)):
            raise ValueError(f'every low must be below its high: {self.low} vs {self.high}')
        if self.min_command_rate_hz >= self.max_command_rate_hz:
            raise ValueError('min_command_rate_hz must be below max_command_rate_hz')
        return self

    @property
    def size(self) -> int:
        """The number of entries of a command."""
        return len(self.low)

    @property
    def entry_names(self) -> tuple[str, ...]:
        """`names`, or placeholders that name no joint (the action is then the tool position)."""
        return self.names or tuple(f'#{i}' for i in range(self.size))

    @property
    def watchdog_timeout(self) -> float:
        return 1.0 / self.min_command_rate_hz

    @property
    def min_interval(self) -> float:
        return 1.0 / self.max_command_rate_hz

    def in_box(self, values, tol: float = 1e-9) -> bool:
        return len(values) == self.size and all(
            lo - tol <= v <= hi + tol for v, lo, hi in zip(values, self.low, self.high, strict=True))

    @classmethod
    def from_yaml(cls, path: str | Path) -> SafetyLimits:
        """Load `safety_limits:` (or a top-level mapping) from a YAML file; unknown keys are an error."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a mapping, got {type(data).__name__}')
        return cls.model_validate(data.get('safety_limits', data))
