"""Learned perception for the verifier: a YOLO detector trained on the cell's own frames, SAM masks.

Importing this package registers the verification backends 'yolo', 'yolo_sam', 'sam' and 'sam_small'
(see `backends.py`); torch, ultralytics and segment-anything are imported only when one is built.
"""
