"""Packaging for hybridlat, driven by nbdev's `settings.ini` (no `pkg_resources`)."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read(Path(__file__).parent/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license']]
requirements = cfg.get('requirements', '').split()
dev_requirements = [r for r in cfg.get('dev_requirements', '').split(' ') if r]
# `nbdev>=2.4.14,<3` holds a comma, so dev requirements are space separated.
faces_requirements = cfg.get('faces_requirements', '').split()   # dlib + its CC0 models + PyAV: `hybridlat[faces]`
readme = Path(__file__).parent/'README.md'

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=readme.read_text(encoding='utf-8') if readme.exists() else cfg['description'],
    long_description_content_type='text/markdown',
    license=lic[0],
    author=cfg['author'],
    author_email=cfg['author_email'],
    url=cfg['git_url'],
    keywords=cfg['keywords'].split(),
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'License :: ' + lic[1],
                 'Natural Language :: ' + cfg['language'].title(),
                 'Programming Language :: Python :: 3'],
    python_requires='>=' + cfg['min_python'],
    packages=setuptools.find_packages(include=['hybridlat', 'hybridlat.*']) + ['hybridlat.assets'],
    package_dir={'hybridlat.assets': 'data'},        # the top-level data/ folder ships as hybridlat.assets
    package_data={'hybridlat.assets': ['*.pt', '*.md', '*.json']},
    exclude_package_data={'hybridlat.assets': ['*_train.pt', '*_train.md']},   # a training run's state stays in the repo
    include_package_data=False,
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'faces': faces_requirements},
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
