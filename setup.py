"""shoal: an erasure-coded, end-to-end-encrypted storage grid, byte-compatible with Tahoe-LAFS 1.20."""
from setuptools import find_packages, setup

setup(
    name="shoal",
    version="0.1.0",
    description="Erasure-coded, end-to-end-encrypted distributed storage grid (Tahoe-LAFS 1.20 compatible)",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"shoal.web": ["templates/*.html", "static/*"]},
    python_requires=">=3.11",
    install_requires=[
        "attrs>=23.1",
        "zfec>=1.5.7",
        "pycryptodome>=3.19",
        "twisted>=23.10",
        "foolscap>=23.11",
        "zope.interface>=6.0",
        "cbor2>=5.4",
        "h11>=0.14",
        "jinja2>=3.1,<4",  # the web pages' templates
        "pycddl>=0.6.1",
        "cryptography>=41",
        "pyyaml>=6.0",
        "prometheus-client>=0.17",
        "rich>=13.0",
        "eliot>=1.14,<2",
        "bcrypt>=3.2.1",  # twisted.conch (the SFTP frontend) with OpenSSH keys
    ],
    extras_require={
        "test": [
            "pytest>=7.4",
            "pytest-timeout>=2.2",
            "pytest-xdist>=3.5,<4",
            "hypothesis>=6.90",
            "ruff>=0.4",
            "mypy>=1.8",
            "import-linter>=2.0",
            "paramiko>=3.4,<6",  # an SFTP client for the SFTP tests
        ],
    },
    entry_points={"console_scripts": ["shoal = shoal.main:main"]},
)
