"""Metadata and entry points: setup.cfg. Here only the data files, which need globbing."""
from glob import glob

from setuptools import setup

setup(data_files=[
    ('share/ament_index/resource_index/packages', ['resource/enpire_task_peg']),
    ('share/enpire_task_peg', ['package.xml']),
    ('share/enpire_task_peg/config', glob('config/*.yaml')),
])
