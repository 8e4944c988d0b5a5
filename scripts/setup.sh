#!/usr/bin/env bash
# One-command set-up, idempotent: venv with pinned wheels, rosidl export fix, colcon build.
# Each step is skipped when its inputs have not changed since it last succeeded.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
stamps="$venv/.enpire-stamps"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
unset ROS_LOCALHOST_ONLY

# The policy sandbox's OS boundary needs bubblewrap; CI starts from a fresh machine, as root, without stdin.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing bubblewrap (the policy sandbox)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap </dev/null >/dev/null
  else
    echo "[setup] WARNING: bubblewrap (bwrap) is missing: trial servers will refuse agent code;" \
         "install it (apt-get install bubblewrap) or accept the weaker sandbox explicitly" >&2
  fi
fi

# MuJoCo (the peg-insertion task) renders its cameras headless on the CPU through EGL (MUJOCO_GL=egl in
# env.sh): the EGL loader and Mesa's software driver (llvmpipe).
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so.0' || ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing EGL with Mesa's software renderer (MuJoCo's offscreen cameras)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 </dev/null >/dev/null
  else
    echo "[setup] WARNING: EGL (libegl1, libegl-mesa0, libgl1-mesa-dri) is missing: MuJoCo cameras" \
         "(the peg-insertion task) cannot render; install them with apt-get" >&2
  fi
fi

python_bin="${ENPIRE_PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating venv with $python_bin"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
mkdir -p "$stamps"
# One set-up at a time (parallel shells, helpers, test sessions).
exec 9>"$stamps/.lock"
flock 9

req_hash=$(sha256sum requirements.txt scripts/patch_rosidl_exports.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamps/requirements" 2>/dev/null)" != "$req_hash" ]; then
  echo "[setup] installing pinned Python and ROS 2 wheels (first run: about a minute)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  "$venv/bin/python" scripts/patch_rosidl_exports.py "$venv"
  echo "$req_hash" > "$stamps/requirements"
  rm -f ros2_ws/install/.enpire-colcon-stamp
fi

# The wheels have no tf2_msgs: build the stand-in with the identical TFMessage (same type hash) only
# where the underlay lacks it, so /tf_static is the standard type everywhere.
base_paths="src ../sim"
if [ ! -f "$venv/share/tf2_msgs/package.xml" ]; then
  base_paths="$base_paths compat/tf2_msgs"
fi
# Likewise control_msgs' FollowJointTrajectory (the command adapter's ros2_control action client).
if [ ! -f "$venv/share/control_msgs/package.xml" ]; then
  base_paths="$base_paths compat/control_msgs"
fi
# Rebuild when a package's metadata, interfaces or installed data change, or a package is (un)ignored;
# Python sources are symlinked.
src_hash=$( (echo "$base_paths"; find ros2_ws/src ros2_ws/compat sim -path '*/__pycache__' -prune -o -type f \
  \( -name package.xml -o -name setup.py -o -name setup.cfg -o -name CMakeLists.txt -o -name COLCON_IGNORE \
     -o -name '*.msg' -o -name '*.srv' -o -name '*.action' -o -path '*/config/*' -o -path '*/resource/*' \
     -o -path '*/launch/*' \) \
  -print | sort | xargs sha256sum) | sha256sum | cut -d' ' -f1)
if [ "$(cat ros2_ws/install/.enpire-colcon-stamp 2>/dev/null)" != "$src_hash" ] || [ ! -f ros2_ws/install/setup.bash ]; then
  echo "[setup] colcon build of the workspace over the venv (about a minute)"
  # Console scripts a setup.py no longer declares must not linger on PATH; the build writes the others anew.
  for manifest in $(find ros2_ws/src sim -name setup.py -not -path '*/build/*' -printf '%h/package.xml\n'); do
    pkg=$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$manifest" | head -1)
    rm -rf "ros2_ws/install/$pkg/lib/$pkg"
  done
  (
    # shellcheck disable=SC1091
    . "$venv/bin/activate"
    export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
    cd ros2_ws && mkdir -p log
    # A file moved out of a package leaves a dangling symlink in its build folder (symlink install),
    # which setuptools then refuses to copy.
    [ -d build ] && find build -xtype l -delete
    # shellcheck disable=SC2086
    colcon --log-base log build --symlink-install --base-paths $base_paths \
      --event-handlers console_cohesion- status- \
      --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF > log/last_build.txt 2>&1 \
      || { tail -50 log/last_build.txt; echo "[setup] colcon build failed, full log: ros2_ws/log/last_build.txt"; exit 1; }
  )
  echo "$src_hash" > ros2_ws/install/.enpire-colcon-stamp
fi
echo "[setup] environment ready (. ./env.sh to enter it)"
