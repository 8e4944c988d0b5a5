"""Verifier settings: colour ranges per object and the thresholds of judging and fusion (YAML-loadable)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from enpire_env.calibration.table_mapping import DEFAULT_TABLE_PIXEL_M
from enpire_env.verification import soft


class HsvRange(BaseModel):
    """Inclusive HSV range in OpenCV units (H 0..179, S and V 0..255). lo_h > hi_h wraps around red."""
    lo: tuple[int, int, int]
    hi: tuple[int, int, int]


class JudgeConfig(BaseModel):
    success_coverage: float = 0.95
    # A camera only claims success when its lower bound >= threshold + margin, the margin growing with
    # the table size of a pixel: a coarse view cannot resolve a 1% coverage difference. The margin must
    # exceed the measurement error AT the threshold. Measured (8x area-sampled sim cameras, 96 px,
    # ~4,000 states within +-1% of 0.95, clean and degraded): the lower bound's largest excess over the
    # true coverage per table unit per pixel was 0.0012 (top; 0.0063 at 5.3 units/px), 0.0010
    # (oblique); 0.0006/unit let a 0.949 state pass as 0.954. 0.0015 keeps ~25% above the worst seen.
    success_margin: float = 0.0
    success_margin_per_unit: float = 0.0015   # per table unit per image pixel at the block
    success_guard: float = 0.005      # with both estimates: neither may be further below the threshold
    failure_margin: float = 0.01
    failure_margin_per_unit: float = 0.003
    refine_band: float = 0.12         # fit the outline when the moments' coverage is this near the threshold
    min_area_ratio: float = 0.92      # mask pixels / fitted-T pixels below this: part of the T is hidden
    max_area_ratio: float = 1.08      # above: the mask takes in something else
    min_fit_ratio: float = 0.85       # IoU of the mask and the fitted T
    max_direct_gap: float = 0.01      # |pose coverage - direct coverage| above this (plus the per-pixel
    direct_gap_per_unit: float = 0.002  # allowance): the two estimates disagree, no success
    min_success_quality: float = 0.3  # a camera claims success only with this much quality left
    max_noise: float = 40.0           # noise sigma (0..255) above which no verdict is given
    min_blob_pixels: int = 12         # fewer T pixels than this: block not found
    max_age_s: float = 0.5
    white_balance: bool = True        # undo a colour cast using the table (the most common colour)
    use_palette: bool = True          # unmix pixels by the known palette (else: the segmenter's mask
                                      # and the pose alone, with pose_margin_factor)
    max_residual: float = 24.0        # a pixel no palette mix explains within this (0..255): unknown
    max_hidden: float = 0.05          # share of the goal in unknown pixels (occluder) that zeroes the quality
    max_colour_cast: float = 4.0      # mean signed offset of the goal window from the palette (0..255)
                                      # that zeroes the quality (clean renders: ~0.1)
    pose_margin_factor: float = 3.0   # margins x this when only the pose can judge (goal not in view)


class FusionConfig(BaseModel):
    rule: str = 'unanimous'
    min_cameras: int = 1             # fewer usable verdicts than this: UNCERTAIN
    success_confidence: float = 0.4  # fused success also needs this much confidence
    # One SUCCESS camera beside cameras that saw the T but stayed uncertain decides only when its lower
    # bound clears the threshold by this many times its own margin.
    lone_margin_factor: float = 1.25


class VerifyConfig(BaseModel):
    colours: dict[str, HsvRange] = Field(default_factory=lambda: dict(DEFAULT_COLOURS))
    # RGB of the scene's colours, for unmixing area-sampled edge pixels (soft.py).
    palette: dict[str, tuple[int, int, int]] = Field(default_factory=lambda: dict(DEFAULT_PALETTE))
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    backend: str = 'classical'
    _unmix: np.ndarray | None = PrivateAttr(default=None)

    @property
    def unmix(self) -> np.ndarray:
        if self._unmix is None:
            self._unmix = soft.unmix_matrix(self.palette)
        return self._unmix

    @property
    def palette_cols(self) -> np.ndarray:
        return np.array([self.palette[k] for k in soft.ORDER], dtype=np.float64).T


# The simulated cell's palette (gym-pusht's): T LightSlateGray (119,136,153), agent RoyalBlue
# (65,105,225), goal LightGreen (144,238,144), table white. The T and the agent share a hue; saturation
# tells them apart.
DEFAULT_COLOURS = {
    'block': HsvRange(lo=(90, 25, 90), hi=(125, 120, 215)),
    'agent': HsvRange(lo=(100, 130, 120), hi=(130, 255, 255)),
    'goal': HsvRange(lo=(40, 50, 150), hi=(80, 200, 255)),
}


DEFAULT_PALETTE = {'block': (119, 136, 153), 'agent': (65, 105, 225), 'goal': (144, 238, 144),
                   'background': (255, 255, 255)}


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> VerifyConfig:
    """Read a verify YAML (the `verification:` section if present, else the whole file)."""
    data: dict = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        data = loaded.get('verification', loaded)
    if overrides:
        data = {**data, **overrides}
    return VerifyConfig.model_validate(data)


class VerifyNodeParameters(BaseModel):
    """The verify node's parameters; VERIFY_RUNTIME ones may change while it runs, the rest are read-only."""
    model_config = ConfigDict(allow_inf_nan=False)

    cameras: list[str] = Field(default_factory=lambda: ['top', 'oblique', 'wrist'],
                               description='cameras judged and fused')
    fusion_rule: str = Field('unanimous', description='how per-camera verdicts are fused')
    max_frame_age: float = Field(0.5, gt=0.0, le=3600.0,
                                 description="oldest frame judged, s on the cell's clock")
    evidence_dir: str = Field('/tmp/enpire_evidence', description='where evidence images go')
    backend: str = Field('classical', description='perception backend by name')
    detector: str = Field('', description="'' | classical | yolo")
    segmenter: str = Field('', description="'' | classical | sam | sam_small")
    yolo_weights: str = Field('', description="'' -> $ENPIRE_YOLO_WEIGHTS -> default train output")
    sam_checkpoint: str = Field('', description="'' -> $ENPIRE_SAM_CHECKPOINT")
    sam_model: str = Field('', description="'' -> $ENPIRE_SAM_MODEL -> vit_b")
    verification_config: str = Field('', description="verifier settings YAML ('' : the package's)")
    cell_silence_s: float = Field(2.0, gt=0.0, le=3600.0,
                                  description='a cell silent this long (wall clock) has stale frames')
    table_pixel_m: float = Field(DEFAULT_TABLE_PIXEL_M, gt=0.0, le=1.0,
                                 description="metres per workspace pixel: a camera's pose on /tf_static -> "
                                             'its table-to-image mapping')
    step_frame_wait_s: float = Field(0.3, ge=0.0, le=60.0,
                                     description="wait for the frames of the cell's latest step, s")

    @field_validator('fusion_rule')
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        from enpire_env.verification.fusion import RULES
        if rule not in RULES:
            raise ValueError(f'fusion_rule {rule!r} not in {RULES}')
        return rule


VERIFY_RUNTIME = frozenset({'fusion_rule', 'max_frame_age', 'cell_silence_s', 'step_frame_wait_s'})
