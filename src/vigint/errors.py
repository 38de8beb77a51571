"""The one exception hierarchy. The CLI shows a VigintError as one line and exits with its `exit_code`: 1, or
3 for an agent refused by its server (agent/uplink.py), which a service manager should not restart."""


class VigintError(Exception):
    """Base of every error Vigint reports to a user; its message is safe to show (never a secret)."""

    exit_code = 1


class ConfigError(VigintError):
    """A setting is unknown or has a bad value; the message names the file (or variable), section and key."""


class StoreError(VigintError):
    """The database cannot be opened, is too new for this program, or refused a change."""


class NotFoundError(VigintError):
    """A client or key id that does not exist."""


class Undeliverable(VigintError):
    """An alert its receiver refused for good (an SMTP 5xx to its recipient or content, a webhook's 4xx), or
    that cannot be built: sending it again would fail the same way."""


class InvalidInputError(VigintError):
    """A value given by the operator is not acceptable (empty name, malformed email, ...)."""
