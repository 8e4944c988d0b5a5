"""Push-T's verification: the per-camera judge (coverage of the goal by the T, from palette unmixing and
the T's pose from its mask's moments), its settings, T fitting and `locate_block` for policies.

The framework (`enpire_env.verification`) finds the judge through `Task.verifier`; nothing here is
imported by it directly.
"""
