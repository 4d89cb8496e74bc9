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
    """Return the path of the pip wheel that this interpreter's own ensurepip installs.

    Never a wheel of another Python: Debian's /usr/share/python-wheels belongs to Debian's python3
    (pip 23.0 there fails on Python 3.12+, whose pkgutil has no ImpImporter). Debian's own python3
    finds it through its patched ensurepip, like any interpreter finds its own.
    """
    import ensurepip

    whl_path_ctx = getattr(ensurepip, '_get_pip_whl_path_ctx', None)
    if whl_path_ctx is not None:  # Python 3.12+
        with whl_path_ctx() as path:
            destination = os.path.join(tmpdir, os.path.basename(str(path)))
            shutil.copyfile(str(path), destination)
            return destination

    get_packages = getattr(ensurepip, '_get_packages', None)
    if get_packages is not None:  # Python 3.8 - 3.11
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
