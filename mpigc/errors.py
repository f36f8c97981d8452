"""Exception types shared by every room of mpigc (a leaf module: no imports)."""


class InputError(Exception):
    """Bad user input: a config key, an argument, a file or a world size.

    The command line prints ``str(error)`` on one line and exits with code 2.
    The message should start with the offending key, e.g.
    ``"code.parts: 5 exceeds the replication 4 of chunk 0"``.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)


class PluginFailure(Exception):
    """A plug-in (a scheme, model or workload from outside mpigc) failed while the run computed.

    ``str(error)`` is one line naming the plug-in and the problem; the
    command line prints it and exits with code 1 (both backends).
    """
