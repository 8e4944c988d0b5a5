"""Policy-improvement regimes beyond hand-written code: behaviour cloning, offline/online RL, tool calling.

- `dataset`: trial bags (at any depth under a root) -> (camera-derived features, safe command) pairs
  with seed, policy hash and verdicts; export in the LeRobot dataset layout. `sim_bags` records trial
  bags through `local_eval.run_trial` (sandboxed policy, safety filter, verifier), without ROS.
- `bc` (torch, CPU), `offline_rl` (AWR on the verifier's reward), `online_rl` (SB3 PPO on
  enpire/PushT-v0): all export an MLP to .npz run by `enpire_task_pusht.learned_policy` in the sandbox.
- `tool_calling`: policies composing `enpire_task_pusht.policy_motion_tools` (locate, push_to, rotate).
- `regime_backends`: one PolicyBackend per regime (Proposal.regime) and a RegimeChooser.
Every regime's policy is judged like any other: `local_eval.evaluate(mode='trial')` (docs/REGIMES.md).
torch and stable_baselines3 are imported lazily, inside the functions that train.
"""
