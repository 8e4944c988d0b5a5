"""The learned verification backends, the factories `enpire_env.verification.backends` names for
`make_backend` / the verify node's `backend`:

    yolo       YOLO boxes + the classical colour segmentation inside each box
    yolo_sam   YOLO boxes + SAM masks from a checkpoint
    yolo_seg   a YOLO-seg model's own boxes and masks (`enpire-yolo-seg-p2-p4` weights)
    sam        classical boxes + SAM masks from a checkpoint (no YOLO weights needed)
    sam_small  classical boxes + an UNTRAINED small SAM: plumbing and latency only, its masks mean nothing

Options (keyword arguments of `make_backend` / `Verifier(..., **options)`; the verify node's parameters
`yolo_weights`, `sam_checkpoint`, `sam_model`):

    yolo_weights     the trained detector (default: $ENPIRE_YOLO_WEIGHTS, else the default
                     `enpire perception train` output, ~/.cache/enpire/perception/yolo/weights/best.pt)
    sam_checkpoint   a segment-anything checkpoint (default: $ENPIRE_SAM_CHECKPOINT)
    sam_model        vit_b | vit_l | vit_h (default: $ENPIRE_SAM_MODEL, else vit_b)

Every factory fails at construction (start-up) when its weights or checkpoint file is missing; there is
no fallback to another backend. Torch, ultralytics and segment-anything are imported only when a backend
is built.

`backend_for(detector, segmenter)` names the backend of a (detector, segmenter) pair, the way the verify
node's `detector` / `segmenter` parameters select one.
"""
from __future__ import annotations

from enpire_env.verification.classical import ClassicalBackend
from enpire_env.verification.config import VerifyConfig

# (detector, segmenter) -> backend name
PAIRS = {('classical', 'classical'): 'classical', ('yolo', 'classical'): 'yolo', ('yolo', 'sam'): 'yolo_sam',
         ('classical', 'sam'): 'sam', ('classical', 'sam_small'): 'sam_small'}
DETECTORS = ('classical', 'yolo')
SEGMENTERS = ('classical', 'sam', 'sam_small')


def backend_for(detector: str = '', segmenter: str = '') -> str:
    """The backend of a detector and a segmenter ('' = classical): ('yolo', '') -> 'yolo'."""
    det, seg = detector or 'classical', segmenter or 'classical'
    if det not in DETECTORS:
        raise ValueError(f'detector {det!r} not in {DETECTORS}')
    if seg not in SEGMENTERS:
        raise ValueError(f'segmenter {seg!r} not in {SEGMENTERS}')
    if (det, seg) not in PAIRS:
        raise ValueError(f'detector {det!r} with segmenter {seg!r} is not a backend; '
                         f'pairs: {sorted(PAIRS)}')
    return PAIRS[(det, seg)]


def _detector(config: VerifyConfig, yolo_weights):
    from enpire_env.perception.train import default_weights
    from enpire_env.perception.yolo_backend import YoloDetector
    return YoloDetector(yolo_weights or default_weights(), labels=config.labels)


def _sam_checkpoint(sam_checkpoint, sam_model):
    from enpire_env.perception.sam_backend import SamSegmenter
    return SamSegmenter.from_checkpoint(sam_checkpoint or None, sam_model or None)


def make_yolo(config: VerifyConfig, yolo_weights: str | None = None):
    return _detector(config, yolo_weights), ClassicalBackend(config)


def make_yolo_seg(config: VerifyConfig, yolo_weights: str | None = None):
    from enpire_env.perception.train import default_weights
    from enpire_env.perception.yolo_backend import YoloMasks
    model = YoloMasks(yolo_weights or default_weights(), labels=config.labels)
    return model, model


def make_yolo_sam(config: VerifyConfig, yolo_weights: str | None = None, sam_checkpoint: str | None = None,
                  sam_model: str | None = None):
    return _detector(config, yolo_weights), _sam_checkpoint(sam_checkpoint, sam_model)


def make_sam(config: VerifyConfig, sam_checkpoint: str | None = None, sam_model: str | None = None):
    return ClassicalBackend(config), _sam_checkpoint(sam_checkpoint, sam_model)


def make_sam_small(config: VerifyConfig):
    from enpire_env.perception.sam_backend import SamSegmenter
    return ClassicalBackend(config), SamSegmenter.untrained_small()
