# Enter the ENPIRE-ROS environment: `. ./env.sh` (bash). Venv, workspace overlay, loopback-only DDS.
_enpire_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
if [ ! -f "$_enpire_root/ros2_ws/install/setup.bash" ]; then
  echo "env.sh: the workspace is not built yet; run 'make test' or 'bash scripts/setup.sh' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_enpire_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_enpire_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_enpire_root/ros2_ws/install/setup.bash"
# Keep DDS discovery on loopback; lab users spanning hosts set SUBNET themselves (see README).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ENPIRE_DISCOVERY_RANGE:-LOCALHOST}"
unset ROS_LOCALHOST_ONLY
# MuJoCo renders offscreen on the CPU through EGL (no display); a lab machine with a GPU keeps EGL.
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export ENPIRE_ROOT="$_enpire_root"
export PYTHONPATH="$_enpire_root${PYTHONPATH:+:$PYTHONPATH}"
unset _enpire_root
# `enpire` (replay, audit, up, demo, bench, mcp, ...) where `ros2 run enpire_bringup enpire` is not available.
export PATH="$ENPIRE_ROOT/ros2_ws/install/enpire_bringup/lib/enpire_bringup:$PATH"
