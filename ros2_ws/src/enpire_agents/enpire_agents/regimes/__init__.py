"""Policy-improvement regimes beyond hand-written code: behaviour cloning, offline/online RL, tool calling.

- `dataset`: trial bags -> (camera-derived features, safe command) pairs with seed, policy hash and
  verdicts; export in the LeRobot dataset layout. `sim_bags` records pure-sim rollouts as trial bags.
- `bc` (torch, CPU), `offline_rl` (AWR on the verifier's reward), `online_rl` (SB3 PPO on
  enpire/PushT-v0): all export an MLP to .npz run by `enpire_rollout.learned_policy` in the sandbox.
- `tool_calling`: policies composing `enpire_rollout.policy_motion_tools` (locate, push_to, rotate).
- `regime_backends`: one PolicyBackend per regime (Proposal.regime) and a RegimeChooser.
torch and stable_baselines3 are imported lazily, inside the functions that train.
"""
