"""Safety core (pure, no rclpy): limits from YAML, the command filter, watchdog and latched e-stop."""
from enpire_env.safety.filter import CommandRule, FilterResult, Kind, SafetyFilter, SafetyRecord
from enpire_env.safety.limits import SafetyLimits

__all__ = ['CommandRule', 'FilterResult', 'Kind', 'SafetyFilter', 'SafetyLimits', 'SafetyRecord']
