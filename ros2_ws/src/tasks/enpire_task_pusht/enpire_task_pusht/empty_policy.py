"""Where every Push-T experiment starts (`Task.empty_policy`): a policy that holds the pusher."""

EMPTY_POLICY = '''"""The empty policy: it holds the agent where it is. Every experiment starts here."""


class Policy:
    def reset(self, context):
        self.context = context

    def act(self, observation):
        x, y = observation.agent_position
        return float(x), float(y)

    def on_attempt_failed(self, report):
        pass
'''
