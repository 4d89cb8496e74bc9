"""Deterministic benchmark artifact: two versions of a ~5,000 file, ~50 MB application tree.

v1 is the base; v2 differs in 1% of the files (new content, same paths). Everything comes from one seeded
PRNG, and the tarballs are written with fixed owners, modes and mtimes and a gzip header without a
timestamp, so the same parameters give the same bytes on every run (for a given zlib). The content is
mostly text-like (identifier soup in lines, which gzip shrinks about as much as real code) in files of
mixed sizes, plus a few larger incompressible binary assets.

usage: generate.py --out DIR [--seed N] [--files N] [--mb N] [--changed-percent P]
Writes DIR/v1.tar.gz, DIR/v2.tar.gz and DIR/manifest.json, and prints the manifest. If DIR/manifest.json
already describes the same parameters and generator, nothing is written (the cache hit is reported).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import io
import itertools
import json
import math
import os
import random
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the output for the same parameters changes; the cache key also hashes this file.
GENERATOR_VERSION = 1
V1_MTIME = 1_700_000_000
V2_MTIME = V1_MTIME + 86_400
BINARY_ASSETS = 30
BINARY_SHARE = 0.25  # of the total bytes
TEXT_EXTENSIONS = ('.py', '.php', '.js', '.ts', '.css', '.html', '.md', '.json', '.yml', '.txt')
TOP_DIRS = ('app', 'lib', 'src', 'vendor', 'resources', 'config', 'tests')


@dataclass
class Tree:
    """Paths in archive order and their contents for one version."""

    files: dict[str, bytes] = field(default_factory=dict)

    def dirs(self) -> list[str]:
        found: set[str] = set()
        for path in self.files:
            parts = path.split('/')[:-1]
            for depth in range(1, len(parts) + 1):
                found.add('/'.join(parts[:depth]))
        return sorted(found)


def _vocabulary(*, rng: random.Random, size: int) -> list[str]:
    letters = 'abcdefghijklmnopqrstuvwxyz'
    words: set[str] = set()
    while len(words) < size:
        stem = ''.join(rng.choices(letters, k=rng.randint(3, 9)))
        style = rng.random()
        if style < 0.2:
            stem = stem.capitalize() + ''.join(rng.choices(letters, k=3)).capitalize()
        elif style < 0.35:
            stem = f'{stem}_{"".join(rng.choices(letters, k=rng.randint(2, 6)))}'
        words.add(stem)
    keywords = ['def', 'return', 'if', 'else', 'for', 'in', 'function', 'const', 'class', 'import', 'self', 'this']
    return keywords + sorted(words)


@functools.cache
def _zipf(count: int) -> tuple[float, ...]:
    """Cumulative Zipf weights: a few tokens are very common, as in real code."""
    return tuple(itertools.accumulate(1.0 / (rank + 1) for rank in range(count)))


def _text(*, rng: random.Random, vocab: list[str], size: int) -> bytes:
    """Code-like text of exactly `size` bytes: indented lines of tokens and punctuation."""
    punct = [' ', ' ', ' ', ' ', ', ', '(', ') ', '.', ' = ', ': ', '\n    ', '\n        ', '\n', '\n\n']
    weights = [30, 30, 30, 30, 6, 5, 5, 6, 4, 3, 5, 3, 4, 1]
    out = io.StringIO()
    written = 0
    while written < size:
        count = max(16, (size - written) // 6)
        tokens = rng.choices(vocab, cum_weights=_zipf(len(vocab)), k=count)
        seps = rng.choices(punct, weights=weights, k=count)
        chunk = ''.join(token + sep for token, sep in zip(tokens, seps, strict=True))
        out.write(chunk)
        written += len(chunk)
    return out.getvalue().encode('ascii')[:size]


def _sizes(*, rng: random.Random, count: int, total: int, low: int, high: int) -> list[int]:
    """`count` log-normally spread sizes clamped to [low, high], scaled to add up to about `total`."""
    raw = [rng.lognormvariate(0.0, 1.1) for _index in range(count)]
    scale = total / sum(raw)
    return [min(high, max(low, int(value * scale))) for value in raw]


def _paths(*, rng: random.Random, count: int) -> list[str]:
    paths: set[str] = set()
    while len(paths) < count:
        depth = rng.choices([1, 2, 3, 4, 5], weights=[1, 3, 4, 3, 1])[0]
        parts = [rng.choice(TOP_DIRS)]
        for level in range(1, depth):
            parts.append(f'd{level}_{rng.randint(0, 4 - level):02d}')
        name = f'f{rng.randint(0, 99999):05d}{rng.choice(TEXT_EXTENSIONS)}'
        paths.add('/'.join([*parts, name]))
    return sorted(paths)


def build(*, seed: int, files: int, megabytes: float, changed_percent: float) -> tuple[Tree, Tree, list[str]]:
    rng = random.Random(seed)
    total = int(megabytes * 1024 * 1024)
    binary_total = int(total * BINARY_SHARE)
    text_count = files - BINARY_ASSETS
    vocab = _vocabulary(rng=rng, size=2500)
    v1 = Tree()
    text_paths = _paths(rng=rng, count=text_count)
    text_sizes = _sizes(rng=rng, count=text_count, total=total - binary_total, low=64, high=512 * 1024)
    for path, size in zip(text_paths, text_sizes, strict=True):
        v1.files[path] = _text(rng=rng, vocab=vocab, size=size)
    binary_sizes = _sizes(rng=rng, count=BINARY_ASSETS, total=binary_total, low=64 * 1024, high=4 * 1024 * 1024)
    for index, size in enumerate(binary_sizes):
        v1.files[f'public/assets/asset-{index:02d}.bin'] = rng.randbytes(size)

    # v2: a separate stream, so changing how many files change does not reshuffle v1.
    change_rng = random.Random(seed + 1)
    ordered = sorted(v1.files)
    changed = sorted(change_rng.sample(ordered, max(1, math.ceil(len(ordered) * changed_percent / 100))))
    v2 = Tree(files=dict(v1.files))
    for path in changed:
        old = v1.files[path]
        if path.endswith('.bin'):
            v2.files[path] = change_rng.randbytes(len(old))
        else:
            # An edit in the middle of the file, as a code change would be.
            start = len(old) // 3
            patch = _text(rng=change_rng, vocab=vocab, size=max(32, len(old) // 10))
            v2.files[path] = old[:start] + patch + old[start + len(patch) :]
    return v1, v2, changed


def write_tarball(*, tree: Tree, path: Path, changed: set[str], level: int = 6) -> None:
    """A gzip'd tar with fixed metadata: the same tree always gives the same bytes."""
    temp = path.with_name(f'.{path.name}.tmp')
    with temp.open('wb') as raw, gzip.GzipFile(filename='', mode='wb', fileobj=raw, compresslevel=level, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode='w|', format=tarfile.GNU_FORMAT) as tar:
            for directory in tree.dirs():
                info = tarfile.TarInfo(directory)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = V1_MTIME
                tar.addfile(info)
            for name in sorted(tree.files):
                data = tree.files[name]
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                info.mtime = V2_MTIME if name in changed else V1_MTIME
                tar.addfile(info, io.BytesIO(data))
    os.replace(temp, path)


def content_digest(tree: Tree) -> str:
    """sha256 over (path, content sha256) pairs: identifies the tree independently of tar or gzip."""
    digest = hashlib.sha256()
    for name in sorted(tree.files):
        digest.update(name.encode() + b'\0' + hashlib.sha256(tree.files[name]).digest())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def cache_key(*, seed: int, files: int, megabytes: float, changed_percent: float) -> str:
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return f'g{GENERATOR_VERSION}-s{seed}-n{files}-m{megabytes:g}-c{changed_percent:g}-{source}'


def generate(*, out: Path, seed: int, files: int, megabytes: float, changed_percent: float) -> dict:
    key = cache_key(seed=seed, files=files, megabytes=megabytes, changed_percent=changed_percent)
    manifest_path = out / 'manifest.json'
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {}
        if manifest.get('key') == key and all(
            (out / name).is_file() and _file_sha256(out / name) == manifest['archives'][name]['sha256']
            for name in ('v1.tar.gz', 'v2.tar.gz')
        ):
            manifest['cached'] = True
            return manifest
    out.mkdir(parents=True, exist_ok=True)
    v1, v2, changed = build(seed=seed, files=files, megabytes=megabytes, changed_percent=changed_percent)
    changed_set = set(changed)
    write_tarball(tree=v1, path=out / 'v1.tar.gz', changed=set())
    write_tarball(tree=v2, path=out / 'v2.tar.gz', changed=changed_set)
    manifest = {
        'key': key,
        'seed': seed,
        'files': len(v1.files),
        'dirs': len(v1.dirs()),
        'bytes': sum(len(data) for data in v1.files.values()),
        'binary_files': sum(1 for name in v1.files if name.endswith('.bin')),
        'changed_files': len(changed),
        'changed_bytes': sum(len(v2.files[name]) for name in changed),
        'changed_sample': changed[:5],
        'archives': {
            name: {'bytes': (out / name).stat().st_size, 'sha256': _file_sha256(out / name), 'content': digest}
            for name, digest in (('v1.tar.gz', content_digest(v1)), ('v2.tar.gz', content_digest(v2)))
        },
    }
    temp = manifest_path.with_name('.manifest.json.tmp')
    temp.write_text(json.dumps(manifest, indent=2) + '\n')
    os.replace(temp, manifest_path)
    manifest['cached'] = False
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--seed', type=int, default=20261122)
    parser.add_argument('--files', type=int, default=5000)
    parser.add_argument('--mb', type=float, default=50.0)
    parser.add_argument('--changed-percent', type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.files <= BINARY_ASSETS:
        parser.error(f'--files must be more than {BINARY_ASSETS}')
    manifest = generate(
        out=args.out, seed=args.seed, files=args.files, megabytes=args.mb, changed_percent=args.changed_percent
    )
    json.dump(manifest, sys.stdout, indent=2)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
