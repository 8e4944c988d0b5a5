"""SAM box prompts: masks of the right shape from a model built without a checkpoint (they mean nothing)."""
from __future__ import annotations

import numpy as np
import pytest

from enpire_env.perception.sam_backend import SamSegmenter
from enpire_env.verification import Frame, FusedJudgement, Verifier, load_config
from enpire_env.verification.backends import Segmenter
from enpire_env.verification.models import Box

cameras = pytest.importorskip('enpire_task_pusht.render')


@pytest.fixture(scope='module')
def small_sam():
    return SamSegmenter.untrained_small()


def test_untrained_small_sam_gives_box_prompted_masks_of_the_right_shape(small_sam):
    assert isinstance(small_sam, Segmenter) and not small_sam.trained
    img = np.full((96, 128, 3), 255, np.uint8)
    boxes = [Box(label='block', x0=10, y0=20, x1=50, y1=60), Box(label='agent', x0=90, y0=5, x1=100, y1=15)]
    masks = small_sam.segment(img, boxes)
    assert set(masks) == {'block', 'agent'}
    for box in boxes:
        m = masks[box.label]
        assert m.shape == (96, 128) and m.dtype == np.float32
        assert set(np.unique(m)) <= {0.0, 1.0}
        outside = m.copy()
        outside[box.y0:box.y1, box.x0:box.x1] = 0
        assert not outside.any()                                   # zero outside its box
    assert small_sam.segment(img, []) == {}


def test_the_image_embedding_is_computed_once_per_image(small_sam, monkeypatch):
    img = np.full((64, 64, 3), 200, np.uint8)
    calls = []
    real = small_sam.predictor.set_image
    monkeypatch.setattr(small_sam.predictor, 'set_image', lambda *a, **k: (calls.append(1), real(*a, **k)))
    small_sam.segment(img, [Box(label='block', x0=1, y0=1, x1=30, y1=30)])
    small_sam.segment(img, [Box(label='agent', x0=2, y0=2, x1=20, y1=20)])
    assert len(calls) == 1


def test_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv('ENPIRE_SAM_CHECKPOINT', raising=False)
    with pytest.raises(FileNotFoundError, match='ENPIRE_SAM_CHECKPOINT'):
        SamSegmenter.from_checkpoint()
    with pytest.raises(FileNotFoundError, match='not found'):
        SamSegmenter.from_checkpoint(tmp_path / 'sam_vit_b.pth')
    with pytest.raises(FileNotFoundError):
        Verifier('pusht', backend='sam')


def test_sam_small_backend_runs_in_the_verifier():
    # use_palette off: the judge builds the T from the segmenter's (here meaningless) mask
    config = load_config('pusht')
    config = config.model_copy(update={'judge': config.judge.model_copy(update={'use_palette': False})})
    verifier = Verifier('pusht', config, backend='sam_small')
    rs = cameras.RenderState(block_pose=(256.0, 256.0, np.pi / 4), agent_xy=(100.0, 100.0))
    frames = {s.name: Frame(*cameras.render(rs, s), 0.0) for s in cameras.DEFAULT_CAMERAS}
    fused = verifier.verify(frames, now=0.0)
    assert isinstance(fused, FusedJudgement) and len(fused.cameras) == 3
