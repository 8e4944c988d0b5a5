"""The peg's YOLO-seg detector end to end on a tiny run (yolo_probe.py, in a subprocess): trained here
(random init, two epochs on a few dozen rendered frames labelled from MuJoCo's segmentation, no download)
through the generic training with the task's dataset; its weights load as the `yolo_seg` backend (boxes
and masks from one inference) and the framework's verifier judges the peg with its masks. Skipped where
torch and ultralytics are not installed."""
import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('ultralytics')
pytestmark = pytest.mark.skipif(ctypes.util.find_library('EGL') is None,
                                reason='libEGL is absent (scripts/setup.sh installs it)')


@pytest.fixture(scope='module')
def probe(tmp_path_factory):
    home = tmp_path_factory.mktemp('perception_home')
    env = {k: v for k, v in os.environ.items() if not k.startswith('YOLO_')}
    env.update(ENPIRE_PERCEPTION_DIR=str(home), OMP_NUM_THREADS='2')
    script = Path(__file__).with_name('yolo_probe.py')
    proc = subprocess.run([sys.executable, str(script), str(home / 'yolo')], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('PROBE ')]
    assert proc.returncode == 0 and lines, f'probe failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return json.loads(lines[-1][len('PROBE '):])


def test_training_reports_box_and_mask_metrics_of_the_tasks_classes(probe):
    assert probe['classes'] == ['peg', 'box']
    assert set(probe['val']) == set(probe['val_masks']) == {'peg', 'box', 'all'}


def test_the_masks_come_at_half_the_input_size_and_are_trained_at_full_size(probe):
    # enpire-yolo-seg-p2: prototypes from the stride-4 level, upsampled 2x (48 x 48 for a 96 px input; the
    # stride-8 layout gave 24 x 24), supervised against full-size label masks (mask_ratio 1)
    assert probe['proto_shapes'] == [[48, 48]] and probe['mask_ratio'] == 1


def test_the_yolo_seg_backend_is_detector_and_segmenter_from_one_inference(probe):
    assert probe['one_backend'] and probe['protocols'] and probe['inferences'] == 1
    assert len(set(probe['labels'])) == len(probe['labels']) and set(probe['labels']) <= {'peg', 'box'}
    if probe['labels']:
        assert probe['mask_dtypes'] == ['float32'] and probe['mask_shapes'] == [[96, 96]]
    assert probe['mask_outside_box'] == 0.0


def test_the_verifier_judges_the_peg_with_the_learned_masks_and_never_falsely(probe):
    assert probe['learned'] and probe['judged'] == ['behind_arm', 'mouth_left', 'mouth_right']
    assert probe['fused'] in ('SUCCESS', 'FAILURE', 'UNCERTAIN') and not probe['false_success']
    assert probe['peg_mask_shape'] == [96, 96]
