"""Metadata and entry points: setup.cfg. Here only the data files, which need globbing."""
from glob import glob

from setuptools import setup

setup(data_files=[
    ('share/ament_index/resource_index/packages', ['resource/enpire_bringup']),
    ('share/enpire_bringup', ['package.xml']),
    ('share/enpire_bringup/config', glob('config/*.yaml')),
    ('share/enpire_bringup/config/bringup', glob('config/bringup/*.yaml')),
    ('share/enpire_bringup/launch', glob('launch/*.launch.py')),
])
