"""Every package manifest parses, its declared dependencies cover what its Python code imports, and every
dependency it declares is something rosdep can resolve (a ROS 2 package or a key that exists in rosdistro)."""
import ast
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[2]
# Every package of the workspace (task folders included) and the simulated cell.
PACKAGES = sorted(p.parent for p in (ROOT / 'ros2_ws/src').rglob('package.xml')) + [ROOT / 'sim']
# Python import name -> the rosdep key a package.xml declares it by; None: rosdistro has no key for it, so
# requirements-lab.txt (pip) must list it instead (its PyPI name in PIP_NAME when that differs).
IMPORT_TO_KEY = {
    'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'yaml': 'python3-yaml', 'pydantic': 'python3-pydantic',
    'shapely': 'python3-shapely', 'matplotlib': 'python3-matplotlib', 'openai': 'python3-openai-pip',
    'stable_baselines3': 'python3-stable-baselines3-pip', 'rclpy': 'rclpy',
    'pymunk': None, 'gymnasium': None, 'rosbags': None, 'anthropic': None, 'ultralytics': None, 'torch': None,
    'segment_anything': None, 'mcap': None, 'pyarrow': None, 'mcp': None, 'foxglove': None, 'pyseccomp': None,
    'metaworld': None, 'mujoco': None,
}
PIP_NAME = {'segment_anything': 'segment-anything', 'foxglove': 'foxglove-sdk'}
# Keys looked up in ros/rosdistro (rosdep/python.yaml, rosdep/base.yaml), December 2026. Not there:
# python3-{anthropic,rosbags,gymnasium,pyarrow,ultralytics,segment-anything,mcap,pymunk,torch,metaworld,
# mujoco}.
ROSDEP_KEYS = {
    'python3-numpy', 'python3-opencv', 'python3-yaml', 'python3-pydantic', 'python3-shapely',
    'python3-matplotlib', 'python3-pytest', 'python3-openai-pip', 'python3-stable-baselines3-pip', 'git',
}
# ROS 2 packages (released in every current distribution) the manifests may name.
ROS_PACKAGES = {
    'rclpy', 'ament_index_python', 'ament_cmake', 'rosidl_default_generators', 'rosidl_default_runtime',
    'builtin_interfaces', 'std_msgs', 'std_srvs', 'geometry_msgs', 'sensor_msgs', 'trajectory_msgs',
    'diagnostic_msgs', 'rcl_interfaces', 'lifecycle_msgs', 'rosgraph_msgs', 'action_msgs', 'control_msgs',
    'tf2_msgs', 'tf2_ros', 'cv_bridge', 'launch', 'launch_ros', 'foxglove_msgs', 'unique_identifier_msgs',
}


def imports_of(package_dir: Path) -> set[str]:
    names = set()
    for source in package_dir.rglob('*.py'):
        if 'test' in source.parts or source.name == 'setup.py':
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split('.')[0])
    return names


@pytest.mark.parametrize('package_dir', PACKAGES, ids=lambda p: p.name)
def test_manifest_parses_and_declares_its_imports(package_dir):
    package = parse_package(str(package_dir / 'package.xml'))
    assert package.package_format == 3
    declared = {d.name for d in package.build_depends + package.exec_depends + package.build_export_depends}
    stdlib = set(sys.stdlib_module_names)
    missing = set()
    for module in imports_of(package_dir):
        if module in stdlib or module == package.name:
            continue
        key = IMPORT_TO_KEY.get(module, module)
        if key is None:
            if not _pip_listed(PIP_NAME.get(module, module)):
                missing.add(f'{module} (no rosdep key: list it in requirements-lab.txt)')
        elif key not in declared:
            missing.add(f'{module} (as {key})')
    assert not missing, f'{package.name} imports but does not declare: {sorted(missing)}'


def _pip_listed(name: str) -> bool:
    lines = (ROOT / 'requirements-lab.txt').read_text().splitlines()
    names = {line.split('==')[0].strip().lower() for line in lines if not line.startswith('#')}
    return name.lower() in names


@pytest.mark.parametrize('package_dir', PACKAGES, ids=lambda p: p.name)
def test_manifest_names_only_dependencies_rosdep_resolves(package_dir):
    package = parse_package(str(package_dir / 'package.xml'))
    ours = {parse_package(str(p / 'package.xml')).name for p in PACKAGES}
    deps = (package.build_depends + package.exec_depends + package.build_export_depends + package.test_depends
            + package.buildtool_depends)
    unknown = sorted({d.name for d in deps} - ours - ROS_PACKAGES - ROSDEP_KEYS)
    assert not unknown, f'{package.name} names dependencies rosdep cannot resolve: {unknown}'
