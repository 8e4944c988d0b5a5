"""The pluggable steps of per-camera perception: a Detector finds boxes, a Segmenter fills them with masks.

Labels are 'block' (the T), 'agent' and 'goal'. A learned backend (YOLO boxes, SAM masks) implements the
same two methods and is registered under a name; the judge never knows which backend ran.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from enpire_env.verification.config import VerifyConfig
from enpire_env.verification.models import Box

LABELS = ('block', 'agent', 'goal')


@runtime_checkable
class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Box]:
        """Boxes (image pixels) of the objects in an RGB uint8 HxWx3 image; at most one per label."""


@runtime_checkable
class Segmenter(Protocol):
    def segment(self, image: np.ndarray, boxes: list[Box]) -> dict[str, np.ndarray]:
        """Per label, a HxW float32 mask in [0, 1] that is zero outside that label's box."""


_REGISTRY: dict[str, Callable[..., tuple[Detector, Segmenter]]] = {}


def register_backend(name: str, factory: Callable[..., tuple[Detector, Segmenter]]) -> None:
    """`factory(config, **options)`; options (e.g. a learned backend's weights path) are the backend's own."""
    _REGISTRY[name] = factory


def make_backend(name: str, config: VerifyConfig, **options) -> tuple[Detector, Segmenter]:
    """Build a registered backend; `options` go to its factory (only when given: classical takes none)."""
    if name not in _REGISTRY:
        # Import for the side effect of registering the bundled backend.
        from enpire_env.verification import classical  # noqa: F401
    if name not in _REGISTRY:
        # The learned backends (yolo, sam, ...): torch and friends are imported only when one is built.
        from enpire_env.perception import backends as _learned  # noqa: F401
    if name not in _REGISTRY:
        raise ValueError(f'unknown verification backend {name!r}; known: {sorted(_REGISTRY)}')
    return _REGISTRY[name](config, **options)


def backend_names() -> list[str]:
    from enpire_env.perception import backends as _learned  # noqa: F401
    from enpire_env.verification import classical  # noqa: F401
    return sorted(_REGISTRY)
