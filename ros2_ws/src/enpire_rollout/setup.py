from glob import glob

from setuptools import find_packages, setup

package_name = 'enpire_rollout'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ENPIRE-ROS maintainers',
    maintainer_email='maintainers@enpire-ros.org',
    description=open('package.xml').read().split('<description>')[1].split('</description>')[0],
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'trial_server = enpire_rollout.trial_server_node:main',
        ],
    },
)
