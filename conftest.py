"""Makes ``ansible_collections.atomic.deploy`` importable for a plain ``pytest tests/unit`` run.

ansible-test units loads its own collection loader and needs nothing from here. A plain pytest run from
the checkout gets the same import path: the collection tree that scripts/collection-tree.sh builds
(build/collections/ansible_collections/atomic/deploy -> the checkout) is created when missing and its
root is put first on sys.path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
COLLECTIONS_ROOT = REPO_ROOT / 'build' / 'collections'
COLLECTION_DIR = COLLECTIONS_ROOT / 'ansible_collections' / 'atomic' / 'deploy'
LINK_TEXT = '../../../..'


def ensure_collection_tree(*, collection_dir: Path, link_text: str) -> None:
    """Create the collection symlink, or fail naming the path when something else is in the way."""
    if collection_dir.is_symlink():
        if os.readlink(collection_dir) == link_text:
            return
        raise RuntimeError(f'collection tree {collection_dir} points at {os.readlink(collection_dir)}, not {link_text}')
    if collection_dir.exists():
        raise RuntimeError(f'collection tree {collection_dir} exists and is not a symlink; remove it (make clean)')
    collection_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        collection_dir.symlink_to(link_text)
    except FileExistsError:
        # another pytest process created it in the meantime
        pass


def running_under_ansible_test() -> bool:
    return 'ansible_pytest_collections' in os.environ.get('PYTEST_PLUGINS', '')


if not running_under_ansible_test():
    ensure_collection_tree(collection_dir=COLLECTION_DIR, link_text=LINK_TEXT)
    if str(COLLECTIONS_ROOT) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS_ROOT))
