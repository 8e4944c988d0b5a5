"""The learned verification backends, registered by name for `make_backend` / the verify node's `backend`.

    yolo       YOLO boxes (weights: $ENPIRE_YOLO_WEIGHTS, else the default `enpire perception train`
               output, ~/.cache/enpire/perception/yolo/weights/best.pt) + the classical colour
               segmentation inside each box
    yolo_sam   YOLO boxes + SAM masks from a checkpoint ($ENPIRE_SAM_CHECKPOINT, $ENPIRE_SAM_MODEL)
    sam        classical boxes + SAM masks from a checkpoint (no YOLO weights needed)
    sam_small  classical boxes + an UNTRAINED small SAM: plumbing and latency only, its masks mean nothing

Every factory fails at construction (start-up) when its weights or checkpoint file is missing.
Torch, ultralytics and segment-anything are imported only when a backend is built.
"""
from __future__ import annotations

from enpire_env.verification.backends import register_backend
from enpire_env.verification.classical import ClassicalBackend
from enpire_env.verification.config import VerifyConfig

LEARNED = ('yolo', 'yolo_sam', 'sam', 'sam_small')


def _yolo(config: VerifyConfig):
    from enpire_env.perception.train import default_weights
    from enpire_env.perception.yolo_backend import YoloDetector
    return YoloDetector(default_weights()), ClassicalBackend(config)


def _yolo_sam(config: VerifyConfig):
    from enpire_env.perception.sam_backend import SamSegmenter
    from enpire_env.perception.train import default_weights
    from enpire_env.perception.yolo_backend import YoloDetector
    return YoloDetector(default_weights()), SamSegmenter.from_checkpoint()


def _sam(config: VerifyConfig):
    from enpire_env.perception.sam_backend import SamSegmenter
    return ClassicalBackend(config), SamSegmenter.from_checkpoint()


def _sam_small(config: VerifyConfig):
    from enpire_env.perception.sam_backend import SamSegmenter
    return ClassicalBackend(config), SamSegmenter.untrained_small()


for _name, _factory in zip(LEARNED, (_yolo, _yolo_sam, _sam, _sam_small), strict=True):
    register_backend(_name, _factory)
