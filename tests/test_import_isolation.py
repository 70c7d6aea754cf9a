"""``import s5_mm`` opens no network connection and its code reads or
starts nothing outside the checkout, the environment and the standard
library (checked in a fresh interpreter with an audit hook)."""
import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent('''
    import json, os, site, sys, sysconfig

    checkout, package, module = sys.argv[1:4]
    roots = {os.path.realpath(p) for p in [
        checkout, sys.prefix, sys.base_prefix, sys.exec_prefix,
        *site.getsitepackages(), site.getusersitepackages(),
        *sysconfig.get_paths().values()] if p}
    stdlib = os.path.realpath(sysconfig.get_paths()['stdlib']) + os.sep
    package = os.path.realpath(package) + os.sep
    seen = []

    def outside(path):
        if isinstance(path, int):  # an already open descriptor
            return False
        path = os.path.realpath(os.fsdecode(path))
        return not any(path == r or path.startswith(r + os.sep)
                       for r in roots)

    def by_package():
        # Whose code asked? The innermost frame outside the standard
        # library and this probe, and the frames calling it up to the
        # import that ran it: third-party modules reading their own
        # config while being imported are not the package's doing.
        f = sys._getframe(2)
        while f and (f.f_code.co_filename.startswith(('<', stdlib))):
            f = f.f_back
        while f and not f.f_code.co_filename.startswith('<frozen'):
            if os.path.realpath(f.f_code.co_filename).startswith(package):
                return True
            f = f.f_back
        return False

    def hook(event, args):
        if event.startswith(('socket.', 'urllib.')):
            seen.append([event, repr(args)[:200]])  # any network, anyone's
        elif event.startswith(('subprocess.', 'os.exec', 'os.spawn',
                               'os.posix_spawn', 'os.system')):
            if by_package():
                seen.append([event, repr(args)[:200]])
        elif event in ('open', 'os.listdir', 'os.scandir') and args \\
                and args[0] is not None and outside(args[0]) \\
                and by_package():
            seen.append([event, os.fsdecode(args[0])])

    _stat = os.stat

    def stat(path, *a, **k):  # stat raises no audit event: wrap it
        if outside(path) and by_package():
            seen.append(['os.stat', os.fsdecode(path)])
        return _stat(path, *a, **k)

    sys.addaudithook(hook)
    os.stat = stat
    __import__(module)
    os.stat = _stat
    print('EVENTS=' + json.dumps(seen))
''')


def probe(checkout, package, module, env):
    proc = subprocess.run(
        [sys.executable, '-c', PROBE,
         str(checkout), str(package), module],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith('EVENTS=')]
    return json.loads(line[-1][len('EVENTS='):])


def test_import_touches_nothing_outside(repo_root, tmp_path):
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path / 'home'),
           'PYTHONPATH': str(repo_root)}
    events = probe(repo_root, repo_root / 's5_mm', 's5_mm', env)
    assert events == [], '\n'.join(map(str, events))


def test_probe_sees_a_package_reaching_out(tmp_path):
    # the check itself can fail: a package that looks in $HOME and tries a
    # connection at import is caught
    pkg = tmp_path / 'nosy'
    pkg.mkdir()
    (pkg / '__init__.py').write_text(
        'import os, socket\n'
        'os.path.isfile(os.path.expanduser("~/.cache/nosy/data"))\n'
        'try:\n'
        '    socket.create_connection(("127.0.0.1", 9), timeout=0.1)\n'
        'except OSError:\n'
        '    pass\n')
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path / 'home'),
           'PYTHONPATH': str(tmp_path)}
    events = probe(pkg, pkg, 'nosy', env)
    assert ['os.stat', str(tmp_path / 'home/.cache/nosy/data')] in events
    assert 'socket.connect' in {e[0] for e in events}
