"""The exceptions of the shmgr package."""


class ShmgrError(Exception):
    """Base class of this package's own errors."""


class StartError(ShmgrError):
    """shmgr could not be started: no binary, or it stopped before listening (a config or a
    type script it refused, an address it could not take). `stderr` holds what shmgr said
    (its own error lines), `returncode` its exit status (None if it did not run or still ran)."""

    def __init__(self, message, stderr='', returncode=None):
        ShmgrError.__init__(self, message)
        self.stderr = stderr
        self.returncode = returncode


class UnsupportedError(ShmgrError, NotImplementedError):
    """Something that would run Python code inside the server: shmgr's server is a C program,
    its own types are written in Lua (docs/lua-types.md)."""
