"""Push-T's learned-perception data: simulator frames labelled from ground truth (dataset.py), the
training set of the generic YOLO detector (`enpire_env.perception.train`, `Task.verifier.dataset`)."""
