"""Auto-reset core (pure, no rclpy): goal validation, target selection, verification against the task's
tolerances, retries, and the pluggable `ResetRoutine` (see `enpire_env.reset.routine` for the real-cell
hook)."""
from enpire_env.reset.core import (
    CameraEstimate,
    Observation,
    ResetConfig,
    ResetOutcome,
    TaskReset,
    beyond_tolerance,
    fuse_estimates,
    load_task_reset,
    run_reset,
    target_state,
    validate_goal,
)
from enpire_env.reset.routine import PlacementOutcome, ResetRoutine, load_routine_factory

__all__ = ['CameraEstimate', 'Observation', 'PlacementOutcome', 'ResetConfig', 'ResetOutcome', 'ResetRoutine',
           'TaskReset', 'beyond_tolerance', 'fuse_estimates', 'load_routine_factory', 'load_task_reset',
           'run_reset', 'target_state', 'validate_goal']
