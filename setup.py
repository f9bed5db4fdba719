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
    # the configs travel inside the package (sscma/.mim/configs links to configs/ in a checkout; a wheel holds
    # copies): `sscma train fomo_mobnetv2` and `_base_ = ['sscma::fomo/fomo_mobnetv2.py']` work from any folder
    # ... and so do the ImageNet-distilled MobileNetV2 weights (tools/distill_mobilenet_v2.py makes them)
    package_data={'sscma': ['.mim/configs/*.py', '.mim/configs/*/*.py', '.mim/configs/*/*/*.py',
                            'models/weights/*.pth']},
    include_package_data=False,
    python_requires='>=3.11',
    # `sscma train|test|export|split|transfer-learn ...`: the same functions as tools/*.py (sscma/cli)
    entry_points={'console_scripts': ['sscma=sscma.cli:main']},
    license='Apache-2.0',
)
