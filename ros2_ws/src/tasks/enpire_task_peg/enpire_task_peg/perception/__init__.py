"""The peg cell's learned perception: a YOLO-seg dataset of its rendered frames, labelled from MuJoCo."""
