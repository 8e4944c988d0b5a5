"""Push-T's verifier settings: the scene's colours and palette, and the thresholds of its judge (YAML:
`config/verify.yaml` of this package, read with `enpire_env.verification.load_config('pusht')`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from enpire_env.verification.config import HsvRange, VerifyConfig
from enpire_task_pusht.verification import soft


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
    white_balance: bool = True        # undo a colour cast using the table (the most common colour)
    use_palette: bool = True          # unmix pixels by the known palette (else: the segmenter's mask
                                      # and the pose alone, with pose_margin_factor)
    max_residual: float = 24.0        # a pixel no palette mix explains within this (0..255): unknown
    max_hidden: float = 0.05          # share of the goal in unknown pixels (occluder) that zeroes the quality
    max_colour_cast: float = 4.0      # mean signed offset of the goal window from the palette (0..255)
                                      # that zeroes the quality (clean renders: ~0.1)
    pose_margin_factor: float = 3.0   # margins x this when only the pose can judge (goal not in view)


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

LABELS = ('block', 'agent', 'goal')   # the scene's objects, in a learned detector's class order


class PushTVerifyConfig(VerifyConfig):
    labels: tuple[str, ...] = LABELS
    colours: dict[str, HsvRange] = Field(default_factory=lambda: dict(DEFAULT_COLOURS))
    # RGB of the scene's colours, for unmixing area-sampled edge pixels (soft.py).
    palette: dict[str, tuple[int, int, int]] = Field(default_factory=lambda: dict(DEFAULT_PALETTE))
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    _unmix: np.ndarray | None = PrivateAttr(default=None)

    @property
    def unmix(self) -> np.ndarray:
        if self._unmix is None:
            self._unmix = soft.unmix_matrix(self.palette)
        return self._unmix

    @property
    def palette_cols(self) -> np.ndarray:
        return np.array([self.palette[k] for k in soft.ORDER], dtype=np.float64).T


def config_path() -> str:
    """This package's verify.yaml (installed share folder, else next to the sources)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return str(Path(get_package_share_directory('enpire_task_pusht')) / 'config' / 'verify.yaml')
    except (ImportError, LookupError):   # not installed (running from source)
        return str(Path(__file__).resolve().parents[2] / 'config' / 'verify.yaml')
