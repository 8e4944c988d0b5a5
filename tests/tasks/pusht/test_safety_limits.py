"""Push-T's safety limits are the task's (Task.safety_limits): the 512 px workspace less a 20 px margin."""
import pytest
from enpire_common import task_registry

from enpire_env.safety import SafetyLimits
from enpire_env.safety_node import task_limits_file


def test_the_tasks_limits_file_loads_with_push_t_values():
    path = task_registry.get('pusht').load('safety_limits')()
    assert path.endswith('enpire_task_pusht/config/safety_limits.yaml')
    limits = SafetyLimits.from_yaml(path)
    assert limits.frame_id == 'table' and limits.size == 2 and limits.low == (20.0, 20.0)
    assert limits.high == (492.0, 492.0) and limits.max_step == 100.0
    assert limits.watchdog_timeout == pytest.approx(0.5)


def test_the_safety_node_takes_the_tasks_limits_and_refuses_an_unknown_task():
    own = task_registry.get('pusht').load('safety_limits')()
    assert task_limits_file('pusht') == own
    with pytest.raises(ValueError, match="unknown task 'nosuchtask'; known tasks: .*pusht"):
        task_limits_file('nosuchtask')
    with pytest.raises(ValueError, match='name the task'):       # '': only where one task is installed
        task_limits_file('')
