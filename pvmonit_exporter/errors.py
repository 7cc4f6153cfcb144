"""The one exception type the command line turns into a single line on stderr and exit status 2."""


class UserError(Exception):
    """A problem the user can fix (a bad config, a missing port, a port in use); `str()` is the line to print."""
