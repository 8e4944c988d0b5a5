"""Point the ROS wheels' rosidl Python export files at this venv's include folders.

The wheels were built under /opt/python/cp311-cp311; CMake refuses those folders as missing
paths when an interface package is generated against the venv (see ROS_ON_PYPI.md).
"""
import re
import sys
import sysconfig
from pathlib import Path

import numpy

WHEEL_INCLUDES = re.compile(r'"/opt/python/[^";]*/include/python3\.\d+;[^"]*numpy/_core/include"')


def main(prefix: str) -> int:
    wanted = f'"{sysconfig.get_paths()["include"]};{numpy.get_include()}"'
    changed = 0
    for path in Path(prefix, 'share').glob('*/cmake/*rosidl_generator_pyExport.cmake'):
        text = path.read_text()
        patched = WHEEL_INCLUDES.sub(wanted, text)
        if patched != text:
            path.write_text(patched)
            changed += 1
    print(f'patched {changed} rosidl export file(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
