"""The command line: ``neurosim <command>``. The parser imports nothing heavy; each command
imports what it needs when it runs, so ``neurosim --help``, ``neurosim models`` and
``neurosim chips`` load neither torch nor numba (see ``neurosim.cli.main``)."""


def main(argv=None) -> int:
    from neurosim.cli.main import main as _main
    return _main(argv)
