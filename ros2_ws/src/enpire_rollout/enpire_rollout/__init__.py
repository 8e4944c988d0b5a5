"""Rollout module (R): budgeted trials in a policy sandbox, one rosbag per trial, parallel cells,
replay and audit."""
