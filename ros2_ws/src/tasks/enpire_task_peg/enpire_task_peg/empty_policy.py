"""Where every peg-insertion experiment starts (`Task.empty_policy`): a policy that holds the hand still
with the gripper open."""

EMPTY_POLICY = '''"""The empty policy: it holds the hand where it is, gripper open. Experiments start here."""


class Policy:
    def reset(self, context):
        self.context = context

    def act(self, observation):
        # hand displacement (x, y, z) in cm per step, gripper effort (-1 open .. 1 closed)
        return 0.0, 0.0, 0.0, -1.0

    def on_attempt_failed(self, report):
        pass
'''
