"""The pluggable steps of per-camera perception: a Detector finds boxes, a Segmenter fills them with masks.

Labels are the task's scene objects (`VerifyConfig.labels`). A backend is a factory
`factory(config, **options) -> (Detector, Segmenter)` registered under a name, as a `module:attribute`
reference resolved only when that backend is built: this module imports no backend, so no backend's
import runs back into it, and torch and friends are loaded only by the process that builds a learned one.
The judge never knows which backend ran.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from enpire_common.task import Ref, resolve

from enpire_env.verification.config import VerifyConfig
from enpire_env.verification.models import Box


@runtime_checkable
class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Box]:
        """Boxes (image pixels) of the objects in an RGB uint8 HxWx3 image; at most one per label."""


@runtime_checkable
class Segmenter(Protocol):
    def segment(self, image: np.ndarray, boxes: list[Box]) -> dict[str, np.ndarray]:
        """Per label, a HxW float32 mask in [0, 1] that is zero outside that label's box."""


Factory = Callable[..., tuple[Detector, Segmenter]]

_REGISTRY: dict[str, Ref | Factory] = {
    'classical': 'enpire_env.verification.classical:make_classical',
    # The learned backends (see enpire_env.perception.backends).
    'yolo': 'enpire_env.perception.backends:make_yolo',
    'yolo_sam': 'enpire_env.perception.backends:make_yolo_sam',
    'yolo_seg': 'enpire_env.perception.backends:make_yolo_seg',
    'sam': 'enpire_env.perception.backends:make_sam',
    'sam_small': 'enpire_env.perception.backends:make_sam_small',
}


def register_backend(name: str, factory: Ref | Factory) -> None:
    """`factory(config, **options)`, or its `module:attribute` reference; options (e.g. a learned
    backend's weights path) are the backend's own."""
    _REGISTRY[name] = factory


def make_backend(name: str, config: VerifyConfig, **options) -> tuple[Detector, Segmenter]:
    """Build a registered backend; `options` go to its factory (only when given: classical takes none)."""
    if name not in _REGISTRY:
        raise ValueError(f'unknown verification backend {name!r}; known: {backend_names()}')
    factory = _REGISTRY[name]
    return (resolve(factory) if isinstance(factory, str) else factory)(config, **options)


def backend_names() -> list[str]:
    return sorted(_REGISTRY)
