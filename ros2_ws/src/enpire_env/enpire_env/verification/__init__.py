"""Multi-camera task verification (pure Python, no ROS): the task's per-camera judge, then fusion.

A task brings its verifier through `Task.verifier` (enpire_common.task.VerifierSpec):

    judge      'pkg.module:Factory'  (settings, detector, segmenter) -> a Judge: camera, Frame -> JudgedFrame
                                      (its `threshold` is the score a lone camera must clear, see fusion.py)
    settings   'pkg.module:Class'    a VerifyConfig subclass with the judge's own numbers
    config     'pkg.module:path_fn'  -> the YAML those settings are read from (`load_config(task)`)
    dataset    'pkg.module:write'    the learned detector's training set (enpire_env.perception.train)
    fusion_rule, min_cameras, success_confidence, lone_margin_factor: the fusion settings

`Verifier(task)` builds the task's judge over a perception backend (backends.py: classical colour ranges
from the settings, or a learned one) and fuses the cameras; the verify node serves every installed task.
"""
from enpire_env.verification.backends import Detector, Segmenter, make_backend, register_backend
from enpire_env.verification.config import FusionConfig, HsvRange, VerifyConfig, load_config
from enpire_env.verification.fusion import RULES, fuse
from enpire_env.verification.judge import CameraModel, Frame, Judge, JudgedFrame
from enpire_env.verification.models import Box, CameraJudgement, FusedJudgement, VerdictState
from enpire_env.verification.verifier import Verifier

__all__ = [
    'Box', 'CameraJudgement', 'CameraModel', 'Detector', 'Frame', 'FusedJudgement', 'FusionConfig',
    'HsvRange', 'Judge', 'JudgedFrame', 'RULES', 'Segmenter', 'VerdictState', 'Verifier', 'VerifyConfig',
    'fuse', 'load_config', 'make_backend', 'register_backend',
]
