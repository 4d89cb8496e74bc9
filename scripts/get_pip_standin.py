"""Local stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test bootstraps pip into each virtual environment it creates by running get-pip.py, which it
fetches from a host this machine cannot reach. scripts/ansible-test.sh copies this file to the cache
path ansible-test checks first (~/.ansible/test/cache/get_pip_<version>.py), so no download happens.

Like the real get-pip.py it takes pip options and requirement specifiers on the command line (plus
--no-setuptools/--no-wheel) and runs "pip install" with them; pip itself runs from the wheel that
ensurepip bundles with the interpreter, so only the requested packages come from the package index.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile

GET_PIP_ONLY_OPTIONS = ('--no-setuptools', '--no-wheel')


def find_bundled_pip_wheel(*, tmpdir: str) -> str:
    """Return the path of the pip wheel that ensurepip ships with this interpreter."""
    import ensurepip

    get_packages = getattr(ensurepip, '_get_packages', None)
    if get_packages is not None:
        package = get_packages().get('pip')
        if package is not None:
            if package.wheel_path:
                return str(package.wheel_path)
            if package.wheel_name:
                from importlib import resources

                source = resources.files('ensurepip') / '_bundled' / package.wheel_name
                destination = os.path.join(tmpdir, package.wheel_name)
                with source.open('rb') as reader, open(destination, 'wb') as writer:
                    shutil.copyfileobj(reader, writer)
                return destination

    candidates = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled', 'pip-*.whl')))
    candidates += sorted(glob.glob('/usr/share/python-wheels/pip-*.whl'))
    if not candidates:
        raise SystemExit(f'get-pip stand-in: no pip wheel bundled with ensurepip for {sys.executable}')
    return candidates[-1]


def build_install_args(*, argv: list[str], wheel: str) -> list[str]:
    """Translate get-pip.py arguments into "pip install" arguments."""
    args = [arg for arg in argv if arg not in GET_PIP_ONLY_OPTIONS]
    requested = [arg for arg in args if not arg.startswith('-')]
    if not any(arg.lower().startswith('pip') and not arg[3:4].isalnum() for arg in requested):
        # get-pip.py installs pip when no pip requirement is given; use the bundled wheel then.
        args.append(wheel)
    return ['install', '--upgrade', '--force-reinstall', *args]


def main() -> int:
    tmpdir = tempfile.mkdtemp(prefix='get-pip-standin-')
    try:
        wheel = find_bundled_pip_wheel(tmpdir=tmpdir)
        sys.path.insert(0, wheel)
        from pip._internal.cli.main import main as pip_main

        return int(pip_main(build_install_args(argv=sys.argv[1:], wheel=wheel)) or 0)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
