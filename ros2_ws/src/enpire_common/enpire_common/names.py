"""The one place that knows the graph's names. Every node and test builds its names here.

Per-cell names are relative to the cell's namespace (a node started in `/cell_0` resolves
`cell_state` to `/cell_0/cell_state`); `cell_name()` builds absolute names for clients.
"""

CELL_STATE = 'cell_state'                      # enpire_interfaces/CellState
CELL_COMMAND = 'cmd/target'                    # enpire_interfaces/Command, published by safety only
POLICY_COMMAND = 'cmd/policy_target'           # enpire_interfaces/Command, into the safety node
GROUND_TRUTH = 'privileged/ground_truth'       # enpire_interfaces/GroundTruth: tests and audits only
PLACE_OBJECTS = 'mock_hardware/place_objects'  # enpire_interfaces/PlaceObjects
SAFETY_STATUS = 'safety/status'                # enpire_interfaces/SafetyStatus
SAFETY_EVENTS = 'safety/events'                # enpire_interfaces/SafetyEvent
ESTOP = 'safety/estop'                         # std_srvs/SetBool: true latches, false releases
VERIFY = 'verify'                              # enpire_interfaces/Verify
VERDICTS = 'verdicts'                          # enpire_interfaces/FusedVerdict: every verdict verify gives
RESET = 'reset'                                # enpire_interfaces/ResetCell action
RUN_TRIAL = 'run_trial'                        # enpire_interfaces/RunTrial action
TRIAL_EVENTS = 'trial_events'                  # enpire_interfaces/TrialEvent
TRIAL_VERDICTS = 'trial/verdicts'              # enpire_interfaces/FusedVerdict: the verdicts of the trials
RECORDER_START = 'recorder/start'              # enpire_interfaces/StartRecording: open a trial's bag
RECORDER_SPLIT = 'recorder/split'              # enpire_interfaces/SplitRecording: close one, open the next
RECORDER_STOP = 'recorder/stop'                # enpire_interfaces/StopRecording: close it with its status
RECORDER_CLOSED = 'recorder/closed'            # enpire_interfaces/BagClosed: a bag is complete on disk
AGENT_STATUS = 'agents/status'                 # std_msgs/String, one line per team event
DIAGNOSTICS = '/diagnostics'                   # diagnostic_msgs/DiagnosticArray (global, by convention)
CLOCK = 'clock'                                # rosgraph_msgs/Clock: a simulated cell's time (sim time)
TF_STATIC = '/tf_static'                       # tf2_msgs/TFMessage: camera poses in the table frame (latched)
# The table frame (REP 103, metres): workspace pixel (px, py) is the point (px, py, 0) * table_pixel_m.
TABLE_FRAME = 'table'


def camera_image(camera: str) -> str:
    return f'cameras/{camera}/image_raw'


def camera_info(camera: str) -> str:
    return f'cameras/{camera}/camera_info'


def camera_homography(camera: str) -> str:
    return f'cameras/{camera}/table_homography'


def camera_frame(camera: str) -> str:
    return f'{camera}_optical_frame'


def cell_name(cell: str, name: str) -> str:
    """Absolute name of a per-cell topic/service/action, e.g. ('cell_0', 'verify') -> /cell_0/verify."""
    if name.startswith('/'):
        return name
    return f"/{cell.strip('/')}/{name}"
