"""Box-prompted masks with Segment Anything (`segment-anything`), as a verification Segmenter.

    seg = SamSegmenter.from_checkpoint('/models/sam_vit_b_01ec64.pth', 'vit_b')   # a real checkpoint
    seg = SamSegmenter.untrained_small()            # tests, latency and plumbing only -- see below
    masks = seg.segment(rgb, boxes)                 # {label: HxW float32 in {0, 1}, zero outside its box}

On a lab machine point `ENPIRE_SAM_CHECKPOINT` (and `ENPIRE_SAM_MODEL`: vit_b, vit_l or vit_h) at a
checkpoint file; a missing file is an error when the backend is built, never a silent fallback.

No checkpoint is shipped or downloaded. `untrained_small()` builds a small SAM (ViT encoder of depth 2,
width 96, 256x256 input; prompt encoder and mask decoder at width 64) with RANDOM weights: it exercises
the real code path -- image embedding, box prompts, mask decoding, up-sampling to the frame -- with the
right shapes and timings, but THE MASKS OF AN UNTRAINED MODEL MEAN NOTHING. Verdicts built on them are
not evidence of anything (the judge then mostly answers UNCERTAIN); masks that matter come from a real
checkpoint or from the classical / YOLO backends.

SAM2 (`sam2`) is not wired in here: it is not installed in this environment.
"""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from enpire_env.verification.models import Box

SAM_MODELS = ('vit_b', 'vit_l', 'vit_h')


def _torch(threads: int | None):
    import torch
    if threads:
        torch.set_num_threads(int(threads))
    return torch


def build_small_sam(img_size: int = 256, embed_dim: int = 96, depth: int = 2, heads: int = 3,
                    prompt_dim: int = 64, seed: int = 0):
    """A small Segment Anything model with random weights (no checkpoint; masks are meaningless)."""
    torch = _torch(None)
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    torch.manual_seed(seed)
    patch = 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=depth, embed_dim=embed_dim, img_size=img_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=heads, patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=[depth - 1], window_size=8, out_chans=prompt_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(img_size // patch, img_size // patch),
            input_image_size=(img_size, img_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=256, num_heads=4),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=64),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


class SamSegmenter:
    """Segmenter: one SAM mask per box prompt (the image embedding is computed once per image)."""

    def __init__(self, sam, threshold: float = 0.0, trained: bool = True, threads: int | None = 2):
        from segment_anything import SamPredictor
        self.torch = _torch(threads)
        self.predictor = SamPredictor(sam)
        self.threshold = threshold
        self.trained = trained
        self._key: tuple | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | None = None, model_type: str | None = None,
                        threads: int | None = 2) -> SamSegmenter:
        """A SAM from a checkpoint file: the argument, else $ENPIRE_SAM_CHECKPOINT ($ENPIRE_SAM_MODEL)."""
        checkpoint = checkpoint or os.environ.get('ENPIRE_SAM_CHECKPOINT')
        model_type = model_type or os.environ.get('ENPIRE_SAM_MODEL', 'vit_b')
        if model_type not in SAM_MODELS:
            raise ValueError(f'SAM model type {model_type!r} not in {SAM_MODELS}')
        if not checkpoint:
            raise FileNotFoundError('no SAM checkpoint given: set ENPIRE_SAM_CHECKPOINT to a '
                                    'segment-anything '
                                    f'{model_type} checkpoint file (nothing is downloaded)')
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f'SAM checkpoint not found: {path}')
        torch = _torch(threads)
        from segment_anything import sam_model_registry
        sam = sam_model_registry[model_type](checkpoint=None)
        sam.load_state_dict(torch.load(str(path), map_location='cpu', weights_only=True))
        return cls(sam.eval(), trained=True, threads=threads)

    @classmethod
    def untrained_small(cls, threads: int | None = 2, **kw) -> SamSegmenter:
        """The small random-weight SAM of `build_small_sam` (plumbing and latency only)."""
        return cls(build_small_sam(**kw), trained=False, threads=threads)

    def _set_image(self, image: np.ndarray) -> None:
        key = (id(image), image.__array_interface__['data'][0], image.shape)
        if key != self._key:
            with self.torch.inference_mode():
                self.predictor.set_image(np.ascontiguousarray(image), image_format='RGB')
            self._key = key

    def segment(self, image: np.ndarray, boxes: list[Box]) -> dict[str, np.ndarray]:
        if not boxes:
            return {}
        self._set_image(image)
        out = {}
        for box in boxes:
            if box.label in out or box.area <= 0:
                continue
            with self.torch.inference_mode():
                logits, _, _ = self.predictor.predict(box=np.array([box.x0, box.y0, box.x1, box.y1], float),
                                                      multimask_output=False, return_logits=True)
            mask = np.zeros(image.shape[:2], np.float32)
            inside = logits[0, box.y0:box.y1, box.x0:box.x1] > self.threshold
            mask[box.y0:box.y1, box.x0:box.x1] = inside.astype(np.float32)
            out[box.label] = mask
        return out
