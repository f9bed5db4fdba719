"""Install sscma; the pinned environment is made by ``bash tools/env.sh`` (see README)."""
from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open('sscma/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='sscma',
    version=read_version(),
    description='Train tiny vision models and ship them quantized to microcontrollers and NPUs',
    packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
    python_requires='>=3.11',
    # `sscma train|test|export|split|transfer-learn ...`: the same functions as tools/*.py (sscma/cli)
    entry_points={'console_scripts': ['sscma=sscma.cli:main']},
    license='Apache-2.0',
)
