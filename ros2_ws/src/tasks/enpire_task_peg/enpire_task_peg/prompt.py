"""The peg-insertion task as LLM backends read it (`Task.prompt`). It names what a policy sees and sends,
never the success rule's numbers (ground truth stays with the judge)."""

PROMPT = '''Peg insertion (Meta-World peg-insert-side, a Sawyer arm in MuJoCo).

A green peg lies on the table; a wooden box with a square hole in its side (the hole faces +x, at about
13 cm height) stands elsewhere on the table. Pick the peg up and insert it into the hole sideways, along -x.
The episode is 500 control steps at 80 Hz. Frame "world": metres, x to the robot's left, y away from the
robot's base, z up.

Your policy's `act(observation)` returns four numbers, each in [-1, 1]:
  hand_dx, hand_dy, hand_dz: the hand's displacement this step, in cm (1.0 = 1 cm);
  gripper: the gripper's effort, -1 fully open .. 1 fully closed.
Commands outside the limits are clamped by the cell's safety filter; the hand stays in its workspace.
The observation carries the hand position (m), the gripper opening (0 closed .. 1 open) and the cameras
mouth_left, mouth_right (the hole's mouth from either side) and behind_arm (along the insertion axis).
Success is judged from the cameras: the peg's head well inside the hole.
'''
