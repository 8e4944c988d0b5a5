"""A test-only server for the interfaces: answers Verify and runs a RunTrial with feedback and cancel."""
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from enpire_interfaces.action import RunTrial
from enpire_interfaces.msg import CameraVerdict, FusedVerdict
from enpire_interfaces.srv import Verify


class EchoServer(Node):
    def __init__(self):
        super().__init__('interface_echo_server', namespace='cell_0')
        group = ReentrantCallbackGroup()
        self.create_service(Verify, 'verify', self.on_verify, callback_group=group)
        ActionServer(self, RunTrial, 'run_trial', self.execute, goal_callback=self.on_goal,
                     cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=group)

    def on_verify(self, request, response):
        """Echo the requested cameras back as per-camera verdicts."""
        if request.task != 'pusht':
            response.ok, response.error = False, f'unknown task {request.task!r}'
            return response
        response.ok = True
        response.verdict = FusedVerdict(task=request.task, state=FusedVerdict.SUCCESS, success=True,
                                        score=0.97, confidence=0.9, rule='unanimous')
        response.verdict.cameras = [CameraVerdict(camera=c, state=CameraVerdict.SUCCESS, score=0.97)
                                    for c in request.cameras]
        return response

    def on_goal(self, goal):
        """Reject goals without attempts."""
        return GoalResponse.ACCEPT if goal.attempts > 0 else GoalResponse.REJECT

    def execute(self, handle):
        """Send one feedback per attempt step; stop early on cancel."""
        goal = handle.request
        scores = []
        for attempt in range(1, goal.attempts + 1):
            for step in range(goal.steps_per_attempt):
                if handle.is_cancel_requested:
                    handle.canceled()
                    return RunTrial.Result(attempts_used=attempt, failure_reason='canceled')
                handle.publish_feedback(RunTrial.Feedback(phase='executing', attempt=attempt, step=step,
                                                          score=0.1 * attempt))
                time.sleep(0.01)
            scores.append(0.1 * attempt)
        handle.succeed()
        return RunTrial.Result(success=True, attempts_used=goal.attempts, attempt_scores=scores,
                               bag_path=f'/bags/{goal.trial_id}')


def main():
    try:
        with rclpy.init():
            rclpy.spin(EchoServer(), executor=MultiThreadedExecutor())
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == '__main__':
    main()
