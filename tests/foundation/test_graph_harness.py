"""The test harness's client node: a wait ends at once, naming the cause, when the node's spin thread died
(nothing would reach the node any more), instead of waiting out its whole budget."""
import time

import pytest

from tests.graph_harness import RosTestNode


@pytest.mark.filterwarnings('ignore::pytest.PytestUnhandledThreadExceptionWarning')   # it is expected
def test_a_wait_names_the_error_that_stopped_the_spin_thread():
    ros = RosTestNode('harness_spin_dies')
    try:
        def boom():
            raise ValueError('a callback that fails')
        ros.node.create_timer(0.01, boom)
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="stopped spinning: ValueError\\('a callback that fails'\\)"):
            ros.wait_for(lambda: False, 120.0, 'something that never comes')
        assert time.monotonic() - t0 < 60.0
    finally:
        ros.close()
