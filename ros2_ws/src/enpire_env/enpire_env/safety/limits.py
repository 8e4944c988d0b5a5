"""The safety limits of a cell, loaded from YAML (`config/safety_limits.yaml`). Pure: no rclpy.

Coordinates are pixels of the 512x512 Push-T workspace (frame `table`); times are seconds of the clock
the filter is given (wall time in real-time pacing, one control period per command in as-fast pacing).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

WORKSPACE_SIZE = 512.0


class SafetyLimits(BaseModel):
    """What may reach the cell. Frozen: a running safety node never changes its limits."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    frame_id: str = Field('table', min_length=1, description='the only frame commands may be given in')
    workspace_margin: float = Field(20.0, ge=0.0, lt=WORKSPACE_SIZE / 2,
                                    description='commands are kept inside [margin, 512 - margin]^2')
    max_step: float = Field(100.0, gt=0.0, le=WORKSPACE_SIZE * 2,
                            description='largest distance of a command from the agent (px)')
    max_speed: float = Field(1000.0, gt=0.0, description='largest speed of the commanded target (px/s)')
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
        if self.min_command_rate_hz >= self.max_command_rate_hz:
            raise ValueError('min_command_rate_hz must be below max_command_rate_hz')
        return self

    @property
    def lower(self) -> float:
        return self.workspace_margin

    @property
    def upper(self) -> float:
        return WORKSPACE_SIZE - self.workspace_margin

    @property
    def watchdog_timeout(self) -> float:
        return 1.0 / self.min_command_rate_hz

    @property
    def min_interval(self) -> float:
        return 1.0 / self.max_command_rate_hz

    def in_workspace(self, x: float, y: float, tol: float = 1e-9) -> bool:
        return self.lower - tol <= x <= self.upper + tol and self.lower - tol <= y <= self.upper + tol

    @classmethod
    def from_yaml(cls, path: str | Path) -> SafetyLimits:
        """Load `safety_limits:` (or a top-level mapping) from a YAML file; unknown keys are an error."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f'{path}: expected a mapping, got {type(data).__name__}')
        return cls.model_validate(data.get('safety_limits', data))
