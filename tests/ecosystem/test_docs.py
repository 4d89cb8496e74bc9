"""Documentation as users read it: ansible-doc of the installed collection, module EXAMPLES, docs/*.md.

Module EXAMPLES are extracted from each module file (without importing it), wrapped as the tasks of a play
and run through ``ansible-playbook --syntax-check`` against the installed collection; their arguments are
also checked against the options ansible-doc reports, which a syntax check does not do. The guides in
docs/ are checked for YAML that parses and plays that pass the same syntax check, for links that lead
somewhere, and for role variables that the role really has.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from helpers import FQCN, REPO_ROOT, Collection, run, tool

MODULES = sorted(path.stem for path in (REPO_ROOT / 'plugins' / 'modules').glob('*.py') if path.stem != '__init__')
GUIDES = sorted(path for path in (REPO_ROOT / 'docs').glob('*.md') if path.name != 'architecture.md')
ROLE_DIR = REPO_ROOT / 'roles' / 'release'
ACTION_RE = re.compile(r'^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$')
# Guides that must exist (the issue that asked for them names them).
REQUIRED_GUIDES = {
    'awx.md',
    'migrating-from-ansistrano.md',
    'migrating-from-deploy-helper.md',
    'adopting-in-place-deploys.md',
    'web-servers.md',
}


def module_constant(*, module: str, name: str) -> str:
    path = REPO_ROOT / 'plugins' / 'modules' / f'{module}.py'
    tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    pytest.fail(f'{path} has no string constant {name}', pytrace=False)


def action_of(task: dict, *, where: str) -> str:
    actions = [key for key in task if ACTION_RE.match(str(key))]
    assert len(actions) == 1, f'{where}: task {task.get("name")!r} should call one FQCN module, found {actions}'
    return actions[0]


def syntax_check(*, collection: Collection, plays: list, workdir: Path, name: str) -> tuple[int, str]:
    playbook = workdir / f'{name}.yml'
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False), encoding='utf-8')
    inventory = workdir / 'inventory.ini'
    inventory.write_text('localhost ansible_connection=local\n', encoding='utf-8')
    proc = run(
        [tool('ansible-playbook'), '--syntax-check', '-i', str(inventory), str(playbook)],
        env=collection.env(),
        cwd=workdir,
        check=False,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def play_of(tasks: list, *, name: str) -> list:
    return [{'name': name, 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]


@pytest.fixture(scope='module')
def module_docs(collection: Collection, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """ansible-doc --json of each module, from the installed copy; a module that fails maps to its error text."""
    workdir = tmp_path_factory.mktemp('ansible-doc')
    docs: dict[str, dict] = {}
    for module in MODULES:
        fqcn = f'{FQCN}.{module}'
        proc = run(
            [tool('ansible-doc'), '-t', 'module', '--json', fqcn], env=collection.env(), cwd=workdir, check=False
        )
        try:
            docs[fqcn] = json.loads(proc.stdout)[fqcn] if proc.returncode == 0 else {'error': proc.stderr}
        except (ValueError, KeyError):
            docs[fqcn] = {'error': f'unreadable ansible-doc output: {proc.stdout[:2000]} {proc.stderr[:2000]}'}
    return docs


def module_doc(module_docs: dict[str, dict], fqcn: str) -> dict:
    entry = module_docs.get(fqcn)
    assert entry is not None, f"{fqcn} is not one of the collection's modules"
    assert 'error' not in entry, f'ansible-doc -t module --json {fqcn} failed:\n{entry["error"]}'
    return entry


def test_every_module_has_documentation(module_docs: dict[str, dict], collection: Collection) -> None:
    assert MODULES, f'no modules found in {REPO_ROOT / "plugins" / "modules"}'
    for module in MODULES:
        entry = module_doc(module_docs, f'{FQCN}.{module}')
        doc = entry['doc']
        assert doc['module'] == module and doc.get('short_description'), f'{FQCN}.{module}: incomplete DOCUMENTATION'
        assert str(collection.path) in doc['filename'], (
            f'ansible-doc read {FQCN}.{module} from {doc["filename"]}, not from the install at {collection.path}'
        )
        assert entry.get('examples', '').strip(), f'{FQCN}.{module} has no EXAMPLES'
        assert entry.get('return'), f'{FQCN}.{module} has no RETURN'


def test_ansible_doc_text_renders_every_module(collection: Collection, tmp_path: Path) -> None:
    for module in MODULES:
        proc = run([tool('ansible-doc'), '-t', 'module', f'{FQCN}.{module}'], env=collection.env(), cwd=tmp_path)
        assert 'OPTIONS' in proc.stdout and 'EXAMPLES' in proc.stdout, f'ansible-doc {FQCN}.{module}:\n{proc.stdout}'
        assert 'ERROR' not in proc.stderr, f'ansible-doc {FQCN}.{module} reported: {proc.stderr}'


def check_module_args(*, task: dict, module_docs: dict[str, dict], where: str) -> str | None:
    """Check one task's arguments against ansible-doc when it calls one of our modules; return the module."""
    action = action_of(task, where=where)
    if not action.startswith(f'{FQCN}.'):
        return None
    options = module_doc(module_docs, action)['doc'].get('options') or {}
    names = {name: name for name in options}
    for name, spec in options.items():
        names.update(dict.fromkeys(spec.get('aliases', []), name))
    args = task[action] or {}
    assert isinstance(args, dict), f'{where}: task {task.get("name")!r} passes {action} free-form arguments'
    unknown = sorted(set(args) - set(names))
    assert not unknown, f'{where}: task {task.get("name")!r} passes unknown options {unknown} to {action}'
    given = {names[key] for key in args}
    missing = sorted(name for name, spec in options.items() if spec.get('required') and name not in given)
    assert not missing, f'{where}: task {task.get("name")!r} omits required options {missing} of {action}'
    for key, value in args.items():
        choices = options[names[key]].get('choices')
        if choices and isinstance(value, str) and '{{' not in value:
            assert value in choices, f'{where}: {action} {key}={value!r} is not one of {choices}'
    return action.rsplit('.', 1)[1]


def tasks_of(plays: list) -> list[dict]:
    """Every task of the plays, blocks flattened."""
    found: list[dict] = []
    pending = [
        task
        for play in plays
        for section in ('pre_tasks', 'tasks', 'post_tasks', 'handlers')
        for task in play.get(section) or []
    ]
    while pending:
        task = pending.pop(0)
        if any(key in task for key in ('block', 'rescue', 'always')):
            pending.extend(task.get('block', []) + task.get('rescue', []) + task.get('always', []))
        else:
            found.append(task)
    return found


@pytest.mark.parametrize('module', MODULES)
def test_module_examples_use_documented_options(module: str, module_docs: dict[str, dict]) -> None:
    """Every task of EXAMPLES that calls one of our modules passes only options the module has."""
    where = f'plugins/modules/{module}.py EXAMPLES'
    tasks = yaml.safe_load(module_constant(module=module, name='EXAMPLES'))
    assert isinstance(tasks, list) and tasks, f'{where} is not a list of tasks'
    called = [check_module_args(task=task, module_docs=module_docs, where=where) for task in tasks]
    assert module in called, f'{where} never calls {FQCN}.{module}'


@pytest.mark.parametrize('module', MODULES)
def test_module_examples_pass_syntax_check(module: str, collection: Collection, tmp_path: Path) -> None:
    tasks = yaml.safe_load(module_constant(module=module, name='EXAMPLES'))
    rc, output = syntax_check(
        collection=collection, plays=play_of(tasks, name=f'EXAMPLES of {FQCN}.{module}'), workdir=tmp_path, name=module
    )
    assert rc == 0, f'ansible-playbook --syntax-check of {FQCN}.{module} EXAMPLES failed:\n{output}'


def test_syntax_check_resolves_modules_from_the_install(collection: Collection, tmp_path: Path) -> None:
    """Control: the syntax check above would catch a module name the installed collection lacks."""
    tasks = [{'name': 'Call a module that does not exist', f'{FQCN}.no_such_module': {'root': '/srv/www/example'}}]
    rc, output = syntax_check(
        collection=collection, plays=play_of(tasks, name='control'), workdir=tmp_path, name='control'
    )
    assert rc != 0 and 'no_such_module' in output, f'--syntax-check accepted {FQCN}.no_such_module:\n{output}'


# --- the role ----------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def role_doc(collection: Collection, tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp('role-doc')
    proc = run([tool('ansible-doc'), '-t', 'role', '--json', f'{FQCN}.release'], env=collection.env(), cwd=workdir)
    return json.loads(proc.stdout)[f'{FQCN}.release']


def role_options(role_doc: dict) -> set[str]:
    return {name for entry in role_doc['entry_points'].values() for name in entry.get('options', {})}


def test_ansible_doc_renders_the_role(collection: Collection, role_doc: dict, tmp_path: Path) -> None:
    assert 'main' in role_doc['entry_points'], f'ansible-doc -t role {FQCN}.release shows no main entry point'
    for entry_point, spec in role_doc['entry_points'].items():
        assert spec.get('short_description'), f'{FQCN}.release entry point {entry_point} has no short_description'
        for name, option in spec.get('options', {}).items():
            assert option.get('description'), f'{FQCN}.release {entry_point}: option {name} has no description'
    proc = run([tool('ansible-doc'), '-t', 'role', f'{FQCN}.release'], env=collection.env(), cwd=tmp_path)
    # with ANSIBLE_NOCOLOR ansible-doc marks bold text with asterisks
    assert re.search(r'ENTRY POINT: \*?main\*?', proc.stdout) and 'release_root' in proc.stdout, (
        f'ansible-doc -t role {FQCN}.release did not render the main entry point:\n{proc.stdout[:3000]}'
    )
    listing = run([tool('ansible-doc'), '-t', 'role', '-l', FQCN], env=collection.env(), cwd=tmp_path)
    assert f'{FQCN}.release' in listing.stdout, (
        f'ansible-doc -t role -l {FQCN} does not list the role:\n{listing.stdout}'
    )


# --- the guides in docs/ -------------------------------------------------------------------------------------

FENCE_RE = re.compile(r'^```([A-Za-z0-9_-]*)[^\n]*\n(.*?)^```\s*$', re.MULTILINE | re.DOTALL)
LINK_RE = re.compile(r'\]\(([^)\s]+)\)')
# release_* names, but not attribute access such as staged.release_path
VAR_RE = re.compile(r'(?<![.\w])release_[a-z0-9_]*[a-z0-9]\b')
FQCN_KEY_RE = re.compile(r'^\s*-?\s*([a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+):', re.MULTILINE)
LOCAL_PREFIXES = (f'{FQCN}.', 'ansible.builtin.')


def yaml_blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding='utf-8')
    return [
        (text.count('\n', 0, match.start()) + 1, match.group(2))
        for match in FENCE_RE.finditer(text)
        if match.group(1) in {'yaml', 'yml'}
    ]


def role_defined_names() -> set[str]:
    """Names the role's task files set for others to read: set_fact, set_stats, register."""
    names: set[str] = set()
    for path in sorted((ROLE_DIR / 'tasks').rglob('*.yml')) + sorted((ROLE_DIR / 'handlers').rglob('*.yml')):
        text = path.read_text(encoding='utf-8')
        names.update(VAR_RE.findall(text))
    return names


def module_names() -> set[str]:
    """Option and return value names of the modules (release_path, ...), which guides may also mention."""
    names: set[str] = set()
    for module in MODULES:
        for constant in ('DOCUMENTATION', 'RETURN'):
            try:
                data = yaml.safe_load(module_constant(module=module, name=constant)) or {}
            except yaml.YAMLError as exc:
                pytest.fail(f'plugins/modules/{module}.py: {constant} is not valid YAML: {exc}', pytrace=False)
            names.update(data.get('options', {}) if constant == 'DOCUMENTATION' else data)
    return names


def test_required_guides_exist() -> None:
    present = {path.name for path in GUIDES}
    missing = sorted(REQUIRED_GUIDES - present)
    assert not missing, f'docs/ lacks the guides {missing}'


@pytest.mark.parametrize('guide', GUIDES, ids=lambda path: path.name)
def test_guide_links_resolve(guide: Path) -> None:
    text = guide.read_text(encoding='utf-8')
    for target in LINK_RE.findall(text):
        if re.match(r'^[a-z]+:', target) or target.startswith('#'):
            continue
        path = (guide.parent / target.split('#', 1)[0]).resolve()
        assert path.exists(), f'{guide}: link to {target} leads nowhere ({path})'


def foreign_roles(plays: list) -> list[str]:
    """Roles a play list uses that are not this collection's (a "before" example of another tool)."""
    names = []
    for play in plays:
        for role in play.get('roles') or []:
            names.append(role if isinstance(role, str) else role.get('role') or role.get('name'))
    for task in tasks_of(plays):
        for key in ('ansible.builtin.include_role', 'ansible.builtin.import_role'):
            if isinstance(task.get(key), dict):
                names.append(task[key].get('name'))
    return sorted(str(name) for name in names if not str(name).startswith(f'{FQCN}.'))


@pytest.mark.parametrize('guide', GUIDES, ids=lambda path: path.name)
def test_guide_yaml_parses_and_plays_pass_syntax_check(
    guide: Path, collection: Collection, module_docs: dict[str, dict], tmp_path: Path
) -> None:
    blocks = yaml_blocks(guide)
    checked = 0
    for line, block in blocks:
        try:
            data = yaml.safe_load(block)
        except yaml.YAMLError as exc:
            pytest.fail(f'{guide}:{line}: YAML block does not parse: {exc}', pytrace=False)
        if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
            continue
        foreign = sorted({key for key in FQCN_KEY_RE.findall(block) if not key.startswith(LOCAL_PREFIXES)})
        if foreign:
            # a "before" example with another collection's modules, which the scratch path does not have
            continue
        if all('hosts' in item or 'ansible.builtin.import_playbook' in item for item in data):
            plays = data
        elif all(any(ACTION_RE.match(str(key)) for key in item) or 'block' in item for item in data):
            plays = play_of(data, name=f'{guide.name} line {line}')
        else:
            continue
        if foreign_roles(plays):
            continue
        for task in tasks_of(plays):
            if any(ACTION_RE.match(str(key)) for key in task):
                check_module_args(task=task, module_docs=module_docs, where=f'{guide}:{line}')
        rc, output = syntax_check(collection=collection, plays=plays, workdir=tmp_path, name=f'block-{line}')
        assert rc == 0, f'{guide}:{line}: ansible-playbook --syntax-check failed:\n{output}'
        checked += 1
    if guide.name in {'awx.md', 'adopting-in-place-deploys.md', 'migrating-from-ansistrano.md'}:
        assert checked, f'{guide} has no play or task list checked by --syntax-check'


@pytest.mark.parametrize('guide', GUIDES, ids=lambda path: path.name)
def test_guide_role_variables_exist(guide: Path, role_doc: dict) -> None:
    """Every release_* name a guide mentions is a role option or a name the role's tasks set."""
    known = role_options(role_doc) | role_defined_names() | module_names()
    mentioned = set(VAR_RE.findall(guide.read_text(encoding='utf-8')))
    # module names and on-disk names that share the prefix
    mentioned -= {'release_rollback', 'release_prune', 'releases_info'}
    unknown = sorted(mentioned - known)
    assert not unknown, f'{guide} mentions role variables the role does not have: {unknown}'
