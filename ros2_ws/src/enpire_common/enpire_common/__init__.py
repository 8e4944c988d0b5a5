"""Pieces every ENPIRE-ROS package shares: graph names, executors, on-demand subscriptions, parameters,
lifecycle helpers, rate status, the task contract and the task registry. Imports no other enpire package."""
