"""Policy-improvement regimes beyond hand-written code: behaviour cloning, offline/online RL, tool calling.

- `dataset`: trial bags (at any depth under a root) -> (camera-derived features, safe command) pairs
  with seed, policy hash and verdicts; export in the LeRobot dataset layout. `sim_bags` records trial
  bags through `local_eval.run_trial` (sandboxed policy, safety filter, verifier), without ROS.
- `bc` (torch, CPU), `offline_rl` (AWR on the verifier's reward), `online_rl` (SB3 PPO on the task's
  Gymnasium env): all export an MLP to .npz run by the task's numpy runtime in the sandbox.
- `tool_calling`: policies composing the task's motion tools (the task's tool-policy template).
- `regime_backends`: one PolicyBackend per regime (Proposal.regime) and a RegimeChooser.
Every regime's policy is judged like any other: `local_eval.evaluate(mode='trial')` (docs/REGIMES.md).
What is task-specific (features, target mapping, perception, env, policy templates) comes from the task's
`extras['learning']` (see `task_learning`). torch and stable_baselines3 are imported lazily, inside the
functions that train.
"""


def task_learning(task: str | None = None):
    """The task's parts of the learning regimes (`Task.extras['learning']`; default: the sole task)."""
    from enpire_common import task_registry

    found = task_registry.get(task or task_registry.sole())
    if 'learning' not in found.extras:
        raise ValueError(f'task {found.name!r} brings no learning regimes (no Task.extras["learning"])')
    return found.load('learning')
