"""The trial server's diagnostics: the pure status from trial events, then the node's /diagnostics on the
graph (the trial server test cell runs trials; here its idle report is checked)."""
from enpire_rollout.trial_diagnostics import OK, WARN, TrialStatus


def test_status_follows_the_trial_events():
    status = TrialStatus()
    assert status.report(0.0)[:2] == (OK, 'idle')
    status.on_event('t1', 'started', 1.0)
    level, message, values = status.report(3.5)
    assert (level, message) == (OK, 'running t1') and values['seconds since last event'] == '2.5'
    status.on_event('t1', 'aborted', 4.0)
    level, message, values = status.report(4.0)
    assert (level, message) == (WARN, 'trial t1 aborted') and values['trials aborted'] == '1'
    status.on_event('t2', 'started', 5.0)
    status.on_event('t2', 'finished', 6.0)
    level, message, values = status.report(6.0)
    assert (level, message) == (OK, 'idle')
    assert (values['trials started'], values['trials finished']) == ('2', '1')
