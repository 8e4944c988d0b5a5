"""A test-only server for the interfaces: answers Verify and PlaceObjects, turns each Command into a CellState
and a GroundTruth carrying its vector, and runs a RunTrial with feedback and cancel."""
import json
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from enpire_interfaces.action import RunTrial
from enpire_interfaces.msg import CameraVerdict, CellState, Command, FusedVerdict, GroundTruth
from enpire_interfaces.srv import PlaceObjects, Verify


class EchoServer(Node):
    def __init__(self):
        super().__init__('interface_echo_server', namespace='cell_0')
        group = ReentrantCallbackGroup()
        self.create_service(Verify, 'verify', self.on_verify, callback_group=group)
        self.create_service(PlaceObjects, 'mock_hardware/place_objects', self.on_place, callback_group=group)
        self.state_pub = self.create_publisher(CellState, 'cell_state', 10)
        self.truth_pub = self.create_publisher(GroundTruth, 'privileged/ground_truth', 10)
        self.create_subscription(Command, 'cmd/target', self.on_command, 10, callback_group=group)
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
        response.verdict.cameras = [CameraVerdict(camera=c, state=CameraVerdict.SUCCESS, score=0.97,
                                                  estimate=[float(i), -0.0, 1e-300])
                                    for i, c in enumerate(request.cameras)]
        return response

    def on_place(self, request, response):
        """Echo the scene back, every float as its exact hex."""
        response.success = True
        response.message = json.dumps({'objects': [[o.name, [float(v).hex() for v in o.pose]]
                                                   for o in request.objects],
                                       'tool': [float(v).hex() for v in request.tool]})
        return response

    def on_command(self, msg):
        """A cell that tracks the command: its vector comes back as `commanded` and as the ground truth."""
        state = CellState(header=msg.header, step=1, commanded=msg.values, task_state=[])
        state.joints.name, state.joints.position = ['j0'], [msg.values[0] if len(msg.values) else 0.0]
        self.state_pub.publish(state)
        self.truth_pub.publish(GroundTruth(header=msg.header, step=1, task_state=msg.values,
                                           tool=msg.values[:2], score=0.5, success=False))

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
