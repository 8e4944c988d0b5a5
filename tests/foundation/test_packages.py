"""Every package manifest parses, and its declared dependencies cover what its Python code imports."""
import ast
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / 'ros2_ws/src' / p for p in ('enpire_interfaces', 'enpire_env', 'enpire_rollout',
                                               'enpire_agents', 'enpire_bringup')] + [ROOT / 'sim']
# Python import name -> the key a package.xml declares it by (rosdep keys for third-party modules).
IMPORT_TO_KEY = {
    'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'yaml': 'python3-yaml', 'pydantic': 'python3-pydantic',
    'pymunk': 'python3-pymunk', 'shapely': 'python3-shapely', 'matplotlib': 'python3-matplotlib',
    'gymnasium': 'python3-gymnasium', 'rosbags': 'python3-rosbags', 'openai': 'python3-openai',
    'anthropic': 'python3-anthropic', 'ultralytics': 'python3-ultralytics', 'torch': 'python3-torch',
    'segment_anything': 'python3-segment-anything', 'rclpy': 'rclpy', 'mcap': 'python3-mcap',
    'stable_baselines3': 'python3-stable-baselines3', 'pyarrow': 'python3-pyarrow',
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
        if key not in declared:
            missing.add(f'{module} (as {key})')
    assert not missing, f'{package.name} imports but does not declare: {sorted(missing)}'
