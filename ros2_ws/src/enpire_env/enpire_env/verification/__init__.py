"""Multi-camera task verification (pure Python, no ROS): per-camera judgement, then fusion."""
from enpire_env.verification.backends import Detector, Segmenter, make_backend, register_backend
from enpire_env.verification.config import VerifyConfig, load_config
from enpire_env.verification.fusion import RULES, fuse
from enpire_env.verification.judge import Frame, JudgedFrame, judge_frame
from enpire_env.verification.locate import locate_block
from enpire_env.verification.models import Box, CameraJudgement, FusedJudgement, Pose2D, VerdictState
from enpire_env.verification.verifier import TASKS, Verifier

__all__ = [
    'Box', 'CameraJudgement', 'Detector', 'Frame', 'FusedJudgement', 'JudgedFrame', 'Pose2D', 'RULES',
    'Segmenter', 'TASKS', 'VerdictState', 'Verifier', 'VerifyConfig', 'fuse', 'judge_frame', 'load_config',
    'locate_block', 'make_backend', 'register_backend',
]
