"""The YOLO detector in the verification interface: weights from a file, clear errors, Verifier plumbing."""
from __future__ import annotations

import numpy as np
import pytest

from enpire_env.perception import train as ptrain
from enpire_env.perception.yolo_backend import YoloDetector
from enpire_env.verification import Frame, FusedJudgement, VerdictState, Verifier, load_config, make_backend
from enpire_env.verification.backends import Detector, Segmenter, backend_names

cameras = pytest.importorskip('enpire_task_pusht.render')


def test_missing_weights_is_a_clear_error_at_start_up(tmp_path, monkeypatch):
    missing = tmp_path / 'nope' / 'best.pt'
    with pytest.raises(FileNotFoundError, match='enpire perception train'):
        YoloDetector(missing)
    monkeypatch.setenv('ENPIRE_YOLO_WEIGHTS', str(missing))
    with pytest.raises(FileNotFoundError, match=str(missing)):
        Verifier('pusht', backend='yolo')   # no silent fallback to the classical detector
    other = tmp_path / 'given' / 'w.pt'     # the option (the node's yolo_weights) wins over the env var
    with pytest.raises(FileNotFoundError, match=str(other)):
        Verifier('pusht', backend='yolo', yolo_weights=str(other))
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='could not be loaded'):
        YoloDetector(junk)


def test_weights_of_other_classes_are_refused(tiny_run):
    with pytest.raises(ValueError, match="not the verifier's labels"):
        YoloDetector(tiny_run['weights'], labels=('cup', 'plate'))


def test_detector_and_segmenter_name_a_backend():
    from enpire_env.perception.backends import backend_for
    assert backend_for('yolo') == 'yolo' and backend_for('yolo', 'sam') == 'yolo_sam'
    assert backend_for('', 'sam_small') == 'sam_small' and backend_for() == 'classical'
    with pytest.raises(ValueError, match='detector'):
        backend_for('yolov9')
    with pytest.raises(ValueError, match='not a backend'):
        backend_for('yolo', 'sam_small')


def test_a_pt_architecture_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match='download'):
        ptrain.architecture_file('yolov8n.pt', tmp_path)
    assert ptrain.architecture_file('enpire-yolo-tiny', tmp_path).endswith('.yaml')
    assert ptrain.architecture_file('enpire-yolo-p2-p5', tmp_path).endswith('enpire-yolo-p2-p5.yaml')


def test_learned_backends_are_registered():
    assert {'classical', 'yolo', 'yolo_sam', 'sam', 'sam_small'} <= set(backend_names())


def test_train_then_infer_round_trip(tiny_run):
    labels = load_config('pusht').labels
    det = YoloDetector(tiny_run['weights'], labels=labels, conf=0.001)
    assert isinstance(det, Detector) and det.imgsz == 96            # the training size, from the weights
    spec = cameras.DEFAULT_CAMERAS[0]
    img, _ = cameras.render(cameras.RenderState((200.0, 220.0, 0.5), (400.0, 400.0)), spec)
    boxes = det.detect(img)
    assert len({b.label for b in boxes}) == len(boxes)             # at most one box per label
    for b in boxes:
        assert b.label in labels and 0 <= b.x0 < b.x1 <= img.shape[1] and 0 <= b.y0 < b.y1 <= img.shape[0]
    res = det.raw(img)
    assert res.orig_shape == img.shape[:2]


def test_yolo_backend_plugs_into_the_verifier(tiny_run, monkeypatch, tmp_path):
    monkeypatch.setenv('ENPIRE_YOLO_WEIGHTS', tiny_run['weights'])
    detector, segmenter = make_backend('yolo', load_config('pusht'))
    assert isinstance(detector, YoloDetector) and isinstance(segmenter, Segmenter)
    monkeypatch.setenv('ENPIRE_YOLO_WEIGHTS', str(tmp_path / 'absent.pt'))
    verifier = Verifier('pusht', backend='yolo', yolo_weights=tiny_run['weights'])
    assert str(verifier.detector.weights) == tiny_run['weights']
    rs = cameras.RenderState(block_pose=(256.0, 256.0, np.pi / 4), agent_xy=(100.0, 100.0))
    frames = {}
    for spec in cameras.DEFAULT_CAMERAS:
        img, h = cameras.render(rs, spec)
        frames[spec.name] = Frame(img, h, 0.0)
    fused = verifier.verify(frames, now=0.0)
    assert isinstance(fused, FusedJudgement) and len(fused.cameras) == 3
    assert fused.state in tuple(VerdictState)


class _FakeBoxes:
    def __init__(self, xyxy, conf, cls):
        import torch
        self.xyxy, self.conf, self.cls = torch.tensor(xyxy), torch.tensor(conf), torch.tensor(cls)

    def __len__(self):
        return len(self.xyxy)


def test_detect_keeps_the_best_box_per_label_and_pads_it(tiny_run, monkeypatch):
    det = YoloDetector(tiny_run['weights'])
    fake = type('R', (), {'boxes': _FakeBoxes([[10.2, 20.7, 30.0, 40.0], [11.0, 21.0, 29.0, 39.0],
                                               [50.0, 50.0, 56.0, 56.0]], [0.6, 0.9, 0.8], [0.0, 0.0, 1.0])})
    monkeypatch.setattr(det, 'raw', lambda image: fake)
    boxes = {b.label: b for b in det.detect(np.zeros((64, 64, 3), np.uint8))}
    assert set(boxes) == {'block', 'agent'}
    blk = boxes['block']
    assert blk.score == pytest.approx(0.9)                         # the most confident of the two
    # 18 x 18 box padded by 10% (1.8 px) -> floor / ceil to whole pixels, x1 and y1 exclusive
    assert (blk.x0, blk.y0, blk.x1, blk.y1) == (9, 19, 31, 41)
    agent = boxes['agent']
    assert (agent.x0, agent.y0, agent.x1, agent.y1) == (48, 48, 58, 58)   # at least 2 px of padding


def test_cli_has_perception_subcommands():
    from enpire_bringup import cli
    with pytest.raises(SystemExit) as exc:
        cli.main(['perception', 'train', '--help'])
    assert exc.value.code == 0
