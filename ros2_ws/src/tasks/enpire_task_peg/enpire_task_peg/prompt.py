"""The peg-insertion task as LLM backends read it (`Task.prompt`). It names what a policy sees and sends,
never the success rule's numbers (ground truth stays with the judge)."""

PROMPT = '''Peg insertion (Meta-World peg-insert-side, a Sawyer arm in MuJoCo).

A green peg (a 24 x 3 x 3 cm bar along x) lies on the table; a wooden box with a square 6 x 6 cm hole in
its side (the hole faces +x, its centre about 13 cm above the table) stands elsewhere on the table. Pick
the peg up and insert it into the hole sideways, head first, along -x.
The episode is 500 control steps at 80 Hz. Frame "world": metres, x to the robot's left, y away from the
robot's base, z up.

Your policy's `act(observation)` returns four numbers, each in [-1, 1]:
  hand_dx, hand_dy, hand_dz: the hand's displacement this step, in cm (1.0 = 1 cm);
  gripper: the gripper's effort, -1 fully open .. 1 fully closed.
Commands outside the limits are clamped by the cell's safety filter; the hand stays in its workspace
(z >= 5 cm).

The observation:
  agent_position: the hand (m); agent_velocity (m/s);
  proprioception: (hand_x, hand_y, hand_z, gripper_open), gripper_open 0 (closed) .. 1 (open): closed on
    the peg it stays well above 0, closed on nothing it reaches about 0;
  scene: {'peg': origin (m), 'box': origin (m)} as the reset located them with its cameras before the
    first attempt: an estimate off by up to 1 cm, not updated while the peg moves;
  frames: camera images, when the cell sends them (mouth_left and mouth_right look into the hole's mouth
    from either side, behind_arm along the insertion axis).
`enpire_task_peg.policy_tools` gives the parts' geometry from their drawings (PEG_GRASP: the grasp point
from the peg's origin, PEG_HEAD: its head, HOLE_MOUTH: the mouth's centre from the box's origin) and helpers
(hand, gripper_open, located, grasp_point, hole_mouth, step_towards).

A trial allows k attempts with no reset between them: attempt k+1 continues from where attempt k left the
arm and the peg, and `on_attempt_failed` tells you why the last one failed. Success is judged from the
cameras: the peg's head well inside the hole.
'''
