"""Learned perception for the verifier: a YOLO detector trained on a task's own rendered frames, SAM masks.

The verification backends 'yolo', 'yolo_sam', 'sam' and 'sam_small' are built by `backends.py` (named by
`enpire_env.verification.backends`); torch, ultralytics and segment-anything are imported only when one
is built. The training set is the task's (`Task.verifier.dataset`).
"""
