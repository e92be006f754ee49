"""The test classes of CPython's test._test_multiprocessing, installed here for the start
method in $SHMGR_CONFORMANCE_START (fork, spawn or forkserver), as CPython's own
test_multiprocessing_<method> modules install them: a module of their own, so that a spawned
child can import the class of the test it runs. manager_tests.py picks the manager classes."""

import os

from test._test_multiprocessing import install_tests_in_module_dict

install_tests_in_module_dict(globals(), os.environ.get('SHMGR_CONFORMANCE_START', 'fork'))
