"""make install / make uninstall into a temporary prefix (and with DESTDIR), the installed
server run with the installed config and types and served to a stock client, the installed
Lua module loaded, the installed Python package imported by Debian's python3 and starting a
Manager with the installed binary (found with no PATH, no $SHMGR), the systemd unit checked with
systemd-analyze verify, and the readiness notification (sd_notify READY=1 once listening,
STOPPING=1 at SIGTERM) that Type=notify needs."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

REPO = harness.REPO
DEBIAN_PYTHON = '/usr/bin/python3'


def debian_pyver():
    """Debian's python3 version as the Makefile reads it (the package's folder is named after it)."""
    p = subprocess.Popen([DEBIAN_PYTHON, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], stdout=subprocess.PIPE)
    return p.communicate()[0].decode().strip()


def make(*args):
    p = subprocess.Popen(['make', '--no-print-directory', '-C', REPO] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.communicate()[0].decode('utf-8', 'replace')
    return p.returncode, out


def manifest(root, prefix):
    with open(os.path.join(root + prefix, 'share', 'shmgr', 'installed-files')) as f:
        return [line.strip() for line in f if line.strip()]


def check_install(root, prefix, what):
    files = manifest(root, prefix)
    for want in ('bin/shmgr', 'bin/shmgr-bench', 'bin/shmgr-cli', 'share/lua/5.4/shmgr/client.lua', 'lib/lua/5.4/shmgr/wire.so',
                 'share/shmgr/types/task_queues.lua', 'etc/shmgr/shmgr.conf.lua', 'lib/systemd/system/shmgr.service',
                 'share/doc/shmgr/README.md', 'share/doc/shmgr/docs/durability.md',
                 'share/doc/shmgr/docs/operations.md', 'share/doc/shmgr/docs/python.md',
                 'lib/python%s/dist-packages/shmgr/__init__.py' % debian_pyver(),
                 'lib/python%s/dist-packages/shmgr/launch.py' % debian_pyver()):
        harness.check(prefix + '/' + want in files, '%s: %s is installed (manifest)' % (what, want))
    for f in files:
        harness.check(os.path.isfile(root + f), '%s: %s exists' % (what, f))
    return files


def serve_installed(prefix):
    """The installed shmgr with the installed config: its types load from the prefix."""
    cfg = os.path.join(prefix, 'etc', 'shmgr', 'shmgr.conf.lua')
    with open(cfg) as f:
        text = f.read()
    harness.check(prefix + '/share/shmgr/types/task_queues.lua' in text, 'the installed config names the installed types')
    env = {'SHMGR_BIN': os.path.join(prefix, 'bin', 'shmgr')}
    old = os.environ.get('SHMGR_BIN')
    os.environ['SHMGR_BIN'] = env['SHMGR_BIN']
    try:
        with harness.server(cfg) as srv:
            m = harness.client_manager(srv, ('get_task_queue',))
            q = m.get_task_queue()
            q.put('installed')
            harness.eq(q.get(), 'installed', 'a stock client served by the installed server')
            cli = subprocess.Popen([os.path.join(prefix, 'bin', 'shmgr-cli'), '-a', '%s:%d' % srv.address,
                                    '-k', srv.authkey.decode('ascii'), 'info'], stdout=subprocess.PIPE)
            out = cli.communicate(timeout=30)[0].decode()
            harness.check(cli.returncode == 0 and ('pid                  %d' % srv.pid) in out,
                          'the installed shmgr-cli asks the installed server: %r' % out[:200])
    finally:
        if old is None:
            del os.environ['SHMGR_BIN']
        else:
            os.environ['SHMGR_BIN'] = old


def lua_module(prefix):
    lua = shutil.which('lua5.4')
    if not lua:
        return harness.skip_part('the installed Lua module', 'lua5.4 not found')
    env = dict(os.environ, LUA_PATH=prefix + '/share/lua/5.4/?.lua;;', LUA_CPATH=prefix + '/lib/lua/5.4/?.so;;')
    p = subprocess.Popen([lua, '-e', 'local c = require "shmgr.client"; local w = require "shmgr.wire"; '
                          'print(type(c.manager), type(w))'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.communicate()[0].decode()
    harness.eq(out.strip(), 'function\ttable', 'the installed shmgr.client and shmgr.wire load')


PACKAGE_SCRIPT = r'''
import os, sys, shmgr
print('from', shmgr.__file__)
with shmgr.Manager() as m:
    d = m.dict(); d['installed'] = True
    with open('/proc/%d/cmdline' % m._process.pid, 'rb') as f:
        print('binary', f.read().split(b'\0')[0].decode())
    print('dict', d.copy())
print('exitcode', m._process.exitcode)
'''


def python_package(prefix, tmp):
    """Debian's python3 imports the installed package (not the checkout's) and starts a Manager
    with the installed binary: found beside the package, with no PATH and no $SHMGR."""
    if not os.path.exists(DEBIAN_PYTHON):
        return harness.skip_part('the installed Python package', DEBIAN_PYTHON + ' not found')
    site = os.path.join(prefix, 'lib', 'python' + debian_pyver(), 'dist-packages')
    env = dict(os.environ, PYTHONPATH=site, PATH=os.path.join(tmp, 'no-bin'))
    env.pop('SHMGR', None)
    p = subprocess.Popen([DEBIAN_PYTHON, '-c', PACKAGE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=env, cwd=tmp)
    out = p.communicate(timeout=60)[0].decode('utf-8', 'replace')
    want = ['from %s/shmgr/__init__.py' % site, 'binary %s/bin/shmgr' % prefix, "dict {'installed': True}", 'exitcode 0']
    harness.eq(out.splitlines(), want, "the installed package, with the installed binary, under Debian's python3")


def verify_unit(prefix):
    tool = shutil.which('systemd-analyze')
    if not tool:
        return harness.skip_part('systemd-analyze verify', 'systemd-analyze not found')
    unit = os.path.join(prefix, 'lib', 'systemd', 'system', 'shmgr.service')
    p = subprocess.Popen([tool, 'verify', unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.communicate()[0].decode('utf-8', 'replace')
    harness.check(p.returncode == 0 and not out.strip(), 'systemd-analyze verify passes the unit: %r' % out)
    with open(unit) as f:
        text = f.read()
    for want in ('Type=notify', 'ExecStart=%s/bin/shmgr --config %s/etc/shmgr/shmgr.conf.lua' % (prefix, prefix),
                 'ExecReload=/bin/kill -HUP $MAINPID',
                 'User=shmgr', 'StateDirectory=shmgr', 'RuntimeDirectory=shmgr', 'NoNewPrivileges=yes',
                 'ProtectSystem=strict'):
        harness.check(want in text, 'the unit has %s' % want)
    # a unit systemd would refuse: the check can fail
    bad = unit + '.bad.service'
    with open(bad, 'w') as f:
        f.write(text.replace('Type=notify', 'Type=notifyy'))
    p = subprocess.Popen([tool, 'verify', bad], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.communicate()[0].decode('utf-8', 'replace')
    harness.check('notifyy' in out, 'systemd-analyze verify names a bad Type: %r' % out)
    os.unlink(bad)


def readiness(tmp):
    path = os.path.join(tmp, 'notify')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    with harness.server(None, env={'NOTIFY_SOCKET': path}) as srv:
        msg = sock.recv(4096).decode()
        harness.check('READY=1' in msg.split('\n'), 'READY=1 sent once listening: %r' % msg)
        harness.check(srv.alive(), 'serving after READY=1')
        os.kill(srv.pid, signal.SIGTERM)
        msg = sock.recv(4096).decode()
        harness.check('STOPPING=1' in msg.split('\n'), 'STOPPING=1 sent at SIGTERM: %r' % msg)
        srv.wait_exit(10)
    sock.close()


def main():
    if harness.BACKEND != 'shmgr':
        harness.skip("installing is shmgr's own")
    if not shutil.which('make'):
        harness.skip('make not found')
    tmp = tempfile.mkdtemp(prefix='shmgr-install-')
    try:
        prefix = os.path.join(tmp, 'prefix')
        rc, out = make('install', 'PREFIX=' + prefix)
        harness.check(rc == 0, 'make install PREFIX=%s: %s' % (prefix, out[-500:]))
        if rc == 0:
            check_install('', prefix, 'PREFIX')
            serve_installed(prefix)
            lua_module(prefix)
            python_package(prefix, tmp)
            verify_unit(prefix)
            rc, out = make('uninstall', 'PREFIX=' + prefix)
            harness.check(rc == 0, 'make uninstall: %s' % out[-500:])
            left = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs]
            harness.eq(left, [], 'nothing left after make uninstall')
        rc, out = make('uninstall', 'PREFIX=' + prefix)
        harness.check(rc != 0 and 'nothing installed' in out, 'make uninstall with nothing installed says so: %r' % out)
        dest = os.path.join(tmp, 'dest')
        rc, out = make('install', 'DESTDIR=' + dest, 'PREFIX=/usr/local')
        harness.check(rc == 0, 'make install DESTDIR=: %s' % out[-500:])
        if rc == 0:
            check_install(dest, '/usr/local', 'DESTDIR')
            with open(os.path.join(dest, 'usr/local/lib/systemd/system/shmgr.service')) as f:
                harness.check('ExecStart=/usr/local/bin/shmgr ' in f.read(), 'DESTDIR: the unit names the final path')
            with open(os.path.join(dest, 'usr/local/lib/python%s/dist-packages/shmgr/launch.py' % debian_pyver())) as f:
                harness.check("INSTALLED_BINARY = '/usr/local/bin/shmgr'" in f.read(),
                              'DESTDIR: the package names the final path of the binary')
            if os.path.exists(DEBIAN_PYTHON):
                p = subprocess.Popen([DEBIAN_PYTHON, '-c', 'import sys; print("\\n".join(sys.path))'], stdout=subprocess.PIPE)
                path = p.communicate()[0].decode().split('\n')
                harness.check('/usr/local/lib/python%s/dist-packages' % debian_pyver() in path,
                              "PREFIX=/usr/local: the package's folder is on Debian's python3 path: %r" % path)
            rc, out = make('uninstall', 'DESTDIR=' + dest, 'PREFIX=/usr/local')
            left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
            harness.eq((rc, left), (0, []), 'DESTDIR: nothing left after make uninstall')
        readiness(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    harness.done()


if __name__ == '__main__':
    main()
