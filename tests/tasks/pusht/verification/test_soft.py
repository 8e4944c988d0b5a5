"""Sub-pixel evidence: palette unmixing, exact goal footprints, coverage bounds from area-sampled frames."""
import numpy as np
import pytest
from enpire_task_pusht import geometry as pusht
from enpire_task_pusht.verification import soft
from enpire_task_pusht.verification.config import PushTVerifyConfig

from tests.tasks.pusht.verification import synth

CFG = PushTVerifyConfig()


def _unmix(pixels):
    img = np.asarray(pixels, np.uint8).reshape(1, -1, 3)
    f, unknown = soft.unmix(img, CFG.unmix, CFG.palette_cols, 24.0)
    return f[0], unknown[0]


def test_unmixing_recovers_edge_mixes_and_flags_foreign_colours():
    block, goal, table = (np.array(CFG.palette[k], float) for k in ('block', 'goal', 'background'))
    mixes = [0.3 * block + 0.7 * goal, 0.8 * block + 0.2 * table, 0.5 * goal + 0.5 * table]
    f, unknown = _unmix(np.rint(mixes + [(30, 30, 30)]))
    assert f[0] == pytest.approx([0.3, 0.0, 0.7, 0.0], abs=0.02)
    assert f[1] == pytest.approx([0.8, 0.0, 0.0, 0.2], abs=0.02)
    assert f[2] == pytest.approx([0.0, 0.0, 0.5, 0.5], abs=0.02)
    assert list(unknown) == [0, 0, 0, 1] and not f[3].any()   # the dark occluder is no palette mix


@pytest.mark.parametrize('ss', [2, 8])
def test_polygon_fractions_sum_to_the_polygon_area(ss):
    h = synth.oblique_homography(240)
    outline = pusht.t_outline((250.0, 230.0, 0.7))
    frac = soft.polygon_fractions(h, outline, 0, 0, 240, 240, ss)
    uv = np.c_[outline, np.ones(len(outline))] @ h.T
    uv = uv[:, :2] / uv[:, 2:3]
    exact = 0.5 * abs(np.dot(uv[:, 0], np.roll(uv[:, 1], -1)) - np.dot(np.roll(uv[:, 0], -1), uv[:, 1]))
    assert frac.sum() == pytest.approx(exact, rel=0.01 if ss == 2 else 0.004)


@pytest.mark.parametrize('hom', [synth.top_homography, synth.oblique_homography])
def test_direct_coverage_bounds_hold_the_truth(hom):
    size = 160
    h = hom(size)
    rng = np.random.default_rng(4)
    for _ in range(6):
        pose = tuple(np.array(pusht.GOAL_POSE) + rng.normal(0, [6, 6, 0.06]))
        img = synth.render(pose, h, size, agent_xy=(60.0, 60.0))
        fp = soft.goal_footprint(h, img.shape[:2])
        assert fp.in_view
        f, unknown = soft.unmix(img[fp.v0:fp.v1, fp.u0:fp.u1], CFG.unmix, CFG.palette_cols, 24.0)
        d = soft.direct_coverage(fp, f, unknown)
        true = pusht.coverage(pose)
        # synth draws 4x finer with fillPoly's inclusive spans: a slight dilation of the T, hence the slack.
        assert d.lo == pytest.approx(true, abs=0.02) and d.hi >= d.lo and d.unknown == 0.0
    # Hiding part of the goal: the bounds widen and still hold the truth.
    img = synth.render(pusht.GOAL_POSE, h, size)
    fp = soft.goal_footprint(h, img.shape[:2])
    img[fp.v0:fp.v0 + 12, :] = 30
    f, unknown = soft.unmix(img[fp.v0:fp.v1, fp.u0:fp.u1], CFG.unmix, CFG.palette_cols, 24.0)
    d = soft.direct_coverage(fp, f, unknown)
    assert d.unknown > 0.02 and d.lo < 0.98 <= d.hi
