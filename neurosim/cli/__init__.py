"""The command line: ``neurosim <command>`` (entry point ``neurosim.cli.main:main``). The
parser imports nothing heavy; each command imports what it needs when it runs, so
``neurosim --help``, ``neurosim models`` and ``neurosim chips`` load neither torch nor numba.

(No ``main`` function here: it would be shadowed by the ``neurosim.cli.main`` module as soon as
that module is imported, and ``from neurosim.cli import main`` would then give a module.)"""
