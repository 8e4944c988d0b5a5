"""Verifier settings: what the framework reads of any task's settings, and the verify node's parameters.

A task's settings class (`Task.verifier.settings`) extends `VerifyConfig` with its judge's own numbers;
`load_config` fills it from the task's YAML (`Task.verifier.config`), with the task's fusion settings
(`Task.verifier`) as the defaults of its `fusion` section.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from enpire_common import task_registry
from enpire_common.task import Task, resolve
from pydantic import BaseModel, ConfigDict, Field, field_validator

from enpire_env.calibration.table_mapping import DEFAULT_TABLE_PIXEL_M


class HsvRange(BaseModel):
    """Inclusive HSV range in OpenCV units (H 0..179, S and V 0..255). lo_h > hi_h wraps around red."""
    lo: tuple[int, int, int]
    hi: tuple[int, int, int]


class FusionConfig(BaseModel):
    rule: str = 'unanimous'
    min_cameras: int = 1             # fewer usable verdicts than this: UNCERTAIN
    success_confidence: float = 0.4  # fused success also needs this much confidence
    # One SUCCESS camera beside cameras that saw the scene but stayed uncertain decides only when its lower
    # bound clears the threshold by this many times its own margin.
    lone_margin_factor: float = 1.25


class VerifyConfig(BaseModel):
    """The settings every task's verifier has; a task's settings class adds its judge's own."""
    backend: str = 'classical'
    labels: tuple[str, ...] = ()         # the scene objects a detector finds (a learned detector's classes)
    colours: dict[str, HsvRange] = Field(default_factory=dict)   # the classical backend's range per label
    min_blob_pixels: int = 12            # the classical backend: fewer pixels of a colour, no object
    max_age_s: float = 0.5               # oldest frame judged when the caller gives no age, s
    fusion: FusionConfig = Field(default_factory=FusionConfig)


def task_of(task: str | Task) -> Task:
    """The installed task by name (`task_registry.UnknownTask` lists the known ones), or the Task given."""
    return task if isinstance(task, Task) else task_registry.get(task)


def load_config(task: str | Task, path: str | Path | None = None, overrides: dict | None = None
                ) -> VerifyConfig:
    """A task's verifier settings from a YAML (its `verification:` section if present, else the whole
    file); no path: the task's own file. The task's fusion settings are the defaults of `fusion`."""
    spec = task_of(task).verifier
    settings = resolve(spec.settings) if spec.settings else VerifyConfig
    path = path or (resolve(spec.config)() if spec.config else None)
    data: dict = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        data = loaded.get('verification', loaded)
    if overrides:
        data = {**data, **overrides}
    fusion = dict(rule=spec.fusion_rule, min_cameras=spec.min_cameras,
                  success_confidence=spec.success_confidence, lone_margin_factor=spec.lone_margin_factor)
    data = {**data, 'fusion': {**fusion, **(data.get('fusion') or {})}}
    return settings.model_validate(data)


class VerifyNodeParameters(BaseModel):
    """The verify node's parameters; VERIFY_RUNTIME ones may change while it runs, the rest are read-only."""
    model_config = ConfigDict(allow_inf_nan=False)

    task: str = Field('', description="the task served ('' : every installed task); verifiers are built "
                                      'at start-up')
    cameras: list[str] = Field(default_factory=lambda: ['top', 'oblique', 'wrist'],
                               description='cameras judged and fused')
    fusion_rule: str = Field('', description="how per-camera verdicts are fused ('' : the task's rule)")
    max_frame_age: float = Field(0.5, gt=0.0, le=3600.0,
                                 description="oldest frame judged, s on the cell's clock")
    evidence_dir: str = Field('/tmp/enpire_evidence', description='where evidence images go')
    backend: str = Field('', description="perception backend by name ('' : the task's)")
    detector: str = Field('', description="'' | classical | yolo")
    segmenter: str = Field('', description="'' | classical | sam | sam_small")
    yolo_weights: str = Field('', description="'' -> $ENPIRE_YOLO_WEIGHTS -> default train output")
    sam_checkpoint: str = Field('', description="'' -> $ENPIRE_SAM_CHECKPOINT")
    sam_model: str = Field('', description="'' -> $ENPIRE_SAM_MODEL -> vit_b")
    verification_config: str = Field('', description="verifier settings YAML of the one task served "
                                                     "('' : the task's own)")
    table_pixel_m: float = Field(DEFAULT_TABLE_PIXEL_M, gt=0.0, le=1.0,
                                 description="metres per workspace pixel: a camera's pose on /tf_static -> "
                                             'its table-to-image mapping')
    step_frame_wait_s: float = Field(0.3, ge=0.0, le=60.0,
                                     description="wait for the frames of the cell's latest step, wall s "
                                                 '(their delivery)')

    @field_validator('fusion_rule')
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        from enpire_env.verification.fusion import RULES
        if rule and rule not in RULES:
            raise ValueError(f'fusion_rule {rule!r} not in {RULES}')
        return rule


VERIFY_RUNTIME = frozenset({'fusion_rule', 'max_frame_age', 'step_frame_wait_s'})
