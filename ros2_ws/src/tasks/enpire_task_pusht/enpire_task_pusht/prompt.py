"""Push-T as LLM backends read it (`Task.prompt`)."""

PROMPT = (
    'Push-T: a round pusher (radius 15 px) moves on a 512x512 px table and must push a T-shaped block '
    'until it covers the goal T drawn at pose (x=256, y=256, theta=pi/4). Success: coverage of the goal '
    'by the block >= 0.95. The policy only commands the pusher\'s target position each control step '
    '(10 Hz); the block moves only when pushed (it has friction, no grasping). The block\'s pose is not '
    'given: estimate it from the camera frames with '
    'enpire_task_pusht.policy_tools.locate_block(observation). '
    'A trial allows k attempts; attempt k+1 continues from where attempt k left the block.')
