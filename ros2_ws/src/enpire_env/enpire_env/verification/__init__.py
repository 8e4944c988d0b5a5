"""Multi-camera task verification (pure Python, no ROS): the task's per-camera judge, then fusion."""
from enpire_env.verification.backends import Detector, Segmenter, make_backend, register_backend
from enpire_env.verification.config import FusionConfig, HsvRange, VerifyConfig, load_config
from enpire_env.verification.fusion import RULES, fuse
from enpire_env.verification.judge import Frame, Judge, JudgedFrame
from enpire_env.verification.models import Box, CameraJudgement, FusedJudgement, VerdictState
from enpire_env.verification.verifier import Verifier

__all__ = [
    'Box', 'CameraJudgement', 'Detector', 'Frame', 'FusedJudgement', 'FusionConfig', 'HsvRange', 'Judge',
    'JudgedFrame', 'RULES', 'Segmenter', 'VerdictState', 'Verifier', 'VerifyConfig', 'fuse', 'load_config',
    'make_backend', 'register_backend',
]
