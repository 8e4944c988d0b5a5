"""Environment module (EN): auto-reset, safety and multi-camera verification of a robot cell."""
