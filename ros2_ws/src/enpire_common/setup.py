"""Metadata and entry points: setup.cfg. Here only the data files, which need globbing."""
from setuptools import setup

setup(data_files=[
    ('share/ament_index/resource_index/packages', ['resource/enpire_common']),
    ('share/enpire_common', ['package.xml']),
])
