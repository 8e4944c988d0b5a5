"""Auto-reset core (pure, no rclpy): goal validation, target selection, verification against a tolerance,
retries, and the pluggable `ResetRoutine` (see `enpire_env.reset.routine` for the real-cell hook)."""
from enpire_env.reset.core import (
                                   ERROR_NAMES,
                                   CameraEstimate,
                                   Observation,
                                   ResetConfig,
                                   ResetOutcome,
                                   fuse_block_estimates,
                                   pick_target,
                                   pose_errors,
                                   run_reset,
                                   validate_goal,
                                   within_tolerance,
)
from enpire_env.reset.routine import PlacementOutcome, ResetRoutine, load_routine_factory

__all__ = ['ERROR_NAMES', 'CameraEstimate', 'Observation', 'PlacementOutcome', 'ResetConfig', 'ResetOutcome',
           'ResetRoutine',
           'fuse_block_estimates', 'load_routine_factory', 'pick_target', 'pose_errors', 'run_reset',
           'validate_goal', 'within_tolerance']
