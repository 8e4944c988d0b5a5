from glob import glob

from setuptools import find_packages, setup

package_name = 'enpire_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
        ('share/' + package_name + '/config/bringup', glob('config/bringup/*.yaml')),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ENPIRE-ROS maintainers',
    maintainer_email='maintainers@enpire-ros.org',
    description=open('package.xml').read().split('<description>')[1].split('</description>')[0],
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'command_adapter = enpire_bringup.adapters.command_adapter_node:main',
            'camera_relay = enpire_bringup.adapters.camera_relay_node:main',
            'camera_calibration = enpire_bringup.adapters.camera_calibration_node:main',
            'enpire = enpire_bringup.cli:main',
        ],
    },
)
