"""Evidence of a verdict: each camera's frame with boxes and masks drawn, and the numbers as JSON."""
from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from enpire_env.verification.judge import Frame, JudgedFrame
from enpire_env.verification.models import FusedJudgement

# Overlay colours, one per label (by a stable hash of its name): the same object is drawn alike in every
# evidence folder of any task.
_OVERLAYS = ((255, 0, 255), (255, 128, 0), (0, 180, 0), (0, 160, 255), (255, 255, 0), (160, 0, 255))


def label_colour(label: str) -> tuple[int, int, int]:
    return _OVERLAYS[zlib.crc32(label.encode()) % len(_OVERLAYS)]


def annotate(frame: Frame, judged: JudgedFrame) -> np.ndarray:
    """RGB frame with masks tinted and boxes outlined (upscaled so small frames stay readable)."""
    img = frame.image.copy()
    for label, mask in judged.masks.items():
        sel = mask > 0.5
        colour = np.array(label_colour(label), np.float32)
        img[sel] = (0.5 * img[sel] + 0.5 * colour).astype(np.uint8)
    scale = max(1, 384 // max(img.shape[:2]))
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for box in judged.judgement.boxes:
        cv2.rectangle(img, (box.x0 * scale, box.y0 * scale), (box.x1 * scale - 1, box.y1 * scale - 1),
                      label_colour(box.label), 1)
    j = judged.judgement
    cv2.putText(img, f'{j.camera} {j.state.name} {j.score:.3f} c{j.confidence:.2f} {j.reason}', (3, 12),
                cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def save_evidence(root: str | Path, fused: FusedJudgement, frames: dict[str, Frame | None],
                  judged: dict[str, JudgedFrame], extra: dict | None = None) -> Path:
    """Write <root>/<time>_<n>/{<camera>.png, verdict.json}; returns the folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stem = time.strftime('%Y%m%dT%H%M%S') + f'_{time.time_ns() % 1_000_000_000:09d}'
    folder = root / stem
    folder.mkdir()
    for cam, jf in judged.items():
        frame = frames.get(cam)
        if frame is not None and frame.image is not None:
            cv2.imwrite(str(folder / f'{cam}.png'), cv2.cvtColor(annotate(frame, jf), cv2.COLOR_RGB2BGR))
    record = {'verdict': json.loads(fused.model_dump_json()), **(extra or {})}
    (folder / 'verdict.json').write_text(json.dumps(record, indent=1))
    return folder
