"""LifecycleClient against a node whose answers get lost (the discovery race of a fresh client): a question
is asked again, a transition's outcome is read from the state, a refused transition is not repeated."""
from concurrent.futures import Future

from enpire_common.lifecycle import LifecycleClient, bring_up
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState

START = {Transition.TRANSITION_CONFIGURE: (State.PRIMARY_STATE_UNCONFIGURED, State.PRIMARY_STATE_INACTIVE),
         Transition.TRANSITION_ACTIVATE: (State.PRIMARY_STATE_INACTIVE, State.PRIMARY_STATE_ACTIVE),
         Transition.TRANSITION_DEACTIVATE: (State.PRIMARY_STATE_ACTIVE, State.PRIMARY_STATE_INACTIVE)}


class FakeManagedNode:
    """The managed node and the client node in one: requests numbered in `lose` (from 0) are carried out,
    their answers never arrive."""

    def __init__(self, lose=(), fail=frozenset()):
        self.state = State.PRIMARY_STATE_UNCONFIGURED
        self.lose, self.fail, self.requests = lose, fail, []

    def create_client(self, srv_type, name):
        return FakeClient(self, srv_type, name)

    def destroy_client(self, client):
        client.destroyed = True

    def serve(self, srv_type, request):
        self.requests.append(srv_type.__name__)
        if srv_type is GetState:
            return GetState.Response(current_state=State(id=self.state))
        start, goal = START[request.transition.id]
        if self.state != start:
            return ChangeState.Response(success=False)
        if request.transition.id in self.fail:
            return ChangeState.Response(success=False)
        self.state = goal
        return ChangeState.Response(success=True)


class FakeClient:
    def __init__(self, node, srv_type, name):
        self.node, self.srv_type, self.srv_name, self.destroyed, self.dropped = node, srv_type, name, False, 0

    def wait_for_service(self, timeout_sec):
        return True

    def call_async(self, request):
        future = Future()
        number = len(self.node.requests)
        response = self.node.serve(self.srv_type, request)
        if number not in self.node.lose:
            future.set_result(response)
        return future

    def remove_pending_request(self, future):
        self.dropped += 1


def wait(future, timeout_s):
    if not future.done():
        raise TimeoutError('no answer')
    return future.result()


def test_a_lost_answer_is_asked_again_and_a_made_transition_is_not_repeated():
    node = FakeManagedNode(lose={0, 2})     # the first get_state's answer and the configure's are lost
    client = LifecycleClient(node, '/cell/x', wait, resend_s=0.01)
    assert client.change(Transition.TRANSITION_CONFIGURE, timeout_s=5) == State.PRIMARY_STATE_INACTIVE
    assert node.requests == ['GetState', 'GetState', 'ChangeState', 'GetState']
    client.close()
    assert client._get.destroyed and client._change.destroyed


def test_a_refused_transition_returns_where_the_node_stayed():
    node = FakeManagedNode(fail={Transition.TRANSITION_CONFIGURE})
    assert bring_up(node, '/cell/x', wait, timeout_s=5) == State.PRIMARY_STATE_UNCONFIGURED
    assert node.requests.count('ChangeState') == 1      # answered with a failure: not sent again


def test_bring_up_through_lost_answers_and_a_silent_node_times_out():
    node = FakeManagedNode(lose={0, 2, 4, 5})
    assert bring_up(node, '/cell/x', wait, timeout_s=5) == State.PRIMARY_STATE_ACTIVE
    client = LifecycleClient(FakeManagedNode(lose=range(10**9)), '/cell/x', wait, resend_s=0.01)
    try:
        client.state(timeout_s=0.2)
    except TimeoutError as exc:
        assert 'no answer from /cell/x/get_state' in str(exc)
    else:
        raise AssertionError('a node that never answers must time out')
