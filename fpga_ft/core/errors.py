"""The one exception type for user errors.

Every problem a user can fix (bad file, unknown board, BER outside [0, 1], unsupported
layer, malformed plan or report) raises :class:`FpgaFtError` with a one-line message.
The CLI prints it as ``error: <message>`` on stderr and exits with status 2.
"""


class FpgaFtError(Exception):
    """A user-facing error: the message is one line and names the problem."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
