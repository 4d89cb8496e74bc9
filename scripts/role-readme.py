"""Generate the variable table of roles/release/README.md from roles/release/meta/argument_specs.yml.

The table sits between the markers ``<!-- argument-specs:start -->`` and ``<!-- argument-specs:end -->``;
everything else in the README is written by hand.

usage: scripts/role-readme.py [--check] [--role DIR]
  --check   change nothing; exit 1 (naming the README) when the table is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROLE = REPO_ROOT / 'roles' / 'release'
START = '<!-- argument-specs:start -->'
END = '<!-- argument-specs:end -->'
MARKUP = re.compile(r'\b([CMOVR]|RV)\(([^)]*)\)')


def load_specs(*, role: Path) -> dict:
    """The argument_specs mapping of the role (entry point name -> spec)."""
    path = role / 'meta' / 'argument_specs.yml'
    data = yaml.safe_load(path.read_text(encoding='utf-8'))
    if not isinstance(data, dict) or not isinstance(data.get('argument_specs'), dict):
        raise ValueError(f'{path} has no argument_specs mapping')
    return data['argument_specs']


def markdown_text(*, text: str) -> str:
    """Ansible semantic markup (C(), O(), V(), M(), RV()) as Markdown code, safe inside a table cell."""
    text = ' '.join(str(text).split())
    text = MARKUP.sub(lambda match: f'`{match.group(2)}`', text)
    return text.replace('|', '\\|')


def markdown_default(*, option: dict) -> str:
    if option.get('required'):
        return 'required'
    value = option.get('default')
    if isinstance(value, str) and '{{' in value:
        rendered = ' '.join(value.split())
    else:
        rendered = json.dumps(value)
    return '`' + rendered.replace('|', '\\|') + '`'


def variables(*, specs: dict) -> dict[str, tuple[dict, list[str]]]:
    """Every variable once, in the order of the entry points, with the entry points that take it."""
    found: dict[str, tuple[dict, list[str]]] = {}
    for entry, spec in specs.items():
        for name, option in (spec.get('options') or {}).items():
            if name not in found:
                found[name] = (option, [])
            found[name][1].append(entry)
    return found


def render_table(*, specs: dict) -> str:
    lines = [
        '| variable | default | type | entry points | description |',
        '| --- | --- | --- | --- | --- |',
    ]
    for name, (option, entries) in variables(specs=specs).items():
        kind = option.get('type', 'str')
        if kind == 'list' and option.get('elements'):
            kind = f'list of {option["elements"]}'
        choices = option.get('choices')
        description = markdown_text(text=option.get('description', ''))
        if choices:
            description += ' Choices: ' + ', '.join(f'`{choice}`' for choice in choices) + '.'
        lines.append(
            f'| `{name}` | {markdown_default(option=option)} | {kind} | {", ".join(entries)} | {description} |'
        )
    return '\n'.join(lines) + '\n'


def updated_readme(*, readme: str, table: str, path: Path) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f'{path} lacks the markers {START} and {END}')
    return readme[: start + len(START)] + '\n' + table + readme[end:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='exit 1 if the README table is out of date')
    parser.add_argument('--role', type=Path, default=DEFAULT_ROLE, help='role directory (default: roles/release)')
    args = parser.parse_args(argv)
    readme_path = args.role / 'README.md'
    try:
        readme = readme_path.read_text(encoding='utf-8')
        wanted = updated_readme(readme=readme, table=render_table(specs=load_specs(role=args.role)), path=readme_path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f'role-readme: {exc}', file=sys.stderr)
        return 2
    if wanted == readme:
        return 0
    if args.check:
        print(
            f'role-readme: the variable table of {readme_path} is out of date; run scripts/role-readme.py',
            file=sys.stderr,
        )
        return 1
    readme_path.write_text(wanted, encoding='utf-8')
    print(f'role-readme: updated {readme_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
