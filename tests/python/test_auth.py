"""Authentication: the right key connects, a wrong key is refused with
AuthenticationError and the server goes on serving; the config's authkey
wins over SHMGR_AUTHKEY."""

import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import multiprocessing  # noqa: E402
from multiprocessing.connection import Client  # noqa: E402


def try_manager(srv, key, what):
    """Connect a SyncManager with key and use a queue; return the exception or None."""
    from multiprocessing.managers import SyncManager
    m = SyncManager(address=srv.address, authkey=key)
    try:
        m.connect()
        q = m.Queue()
        q.put(what)
        harness.eq(q.get(timeout=5), what, '%s: queue round trip' % what)
    except multiprocessing.AuthenticationError as e:
        return e
    return None


def check_server(srv, good, bad, what):
    e = try_manager(srv, bad, what + ' wrong key')
    harness.check(isinstance(e, multiprocessing.AuthenticationError),
                  '%s: connect with a wrong key raises AuthenticationError, got %r' % (what, e))
    harness.raises(multiprocessing.AuthenticationError, Client, srv.address, authkey=bad,
                   what='%s: Client() with a wrong key' % what)
    e = try_manager(srv, good, what + ' right key')
    harness.check(e is None, '%s: the right key after a refused one: %r' % (what, e))
    harness.raises(multiprocessing.AuthenticationError, Client, srv.address, authkey=b'',
                   what='%s: Client() with an empty key' % what)
    # raw client with the right key still served
    c = Client(srv.address, authkey=good)
    c.send((None, 'dummy', (), {}))
    harness.eq(c.recv(), ('#RETURN', None), '%s: dummy after refusals' % what)
    c.close()


def main():
    if sys.version_info >= (3, 12):
        harness.note('this client (Python %s) answers challenges with the {sha256} form '
                     'and challenges with {sha256} + 40 bytes' % harness.version_tag())
    else:
        harness.note('this client (Python %s) uses the legacy form: raw HMAC-MD5 answers, '
                     '20-byte challenges' % harness.version_tag())

    with harness.server(authkey=b'right-key') as srv:
        check_server(srv, b'right-key', b'wrong-key', 'env key')
        # a longer key, and one that only differs in the last byte
        check_server(srv, b'right-key', b'right-kez', 'near-miss key')

    with harness.server(authkey=b'x' * 200) as srv:
        check_server(srv, b'x' * 200, b'x' * 199, '200-byte key')

    # the config's authkey wins over the environment's
    with harness.server(harness.conf('auth_config.lua'), authkey=b'key-from-config',
                        env={'SHMGR_AUTHKEY': 'key-from-env'}) as srv:
        check_server(srv, b'key-from-config', b'key-from-env', 'config key')
    harness.done()


if __name__ == '__main__':
    main()
