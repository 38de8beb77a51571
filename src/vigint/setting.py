"""How one setting is declared: its default, the reason for that default and the values it may take.

The sections of `vigint.config` and `vigint.streaming` declare every field with `setting`, so that the
config file reader, `vigint settings` and config.example.ini find each setting's reason and bounds in one
place.
"""

from collections.abc import Callable
from dataclasses import field


def setting(default, doc: str, *, minimum: float | None = None, maximum: float | None = None,
            choices: tuple[str, ...] | None = None, secret: bool = False,
            check: Callable[[str], object] | None = None):
    """Declare one setting: its default, a one-line reason for that default, its allowed values.

    A `secret` setting (password, API key) never appears in a repr, so never in a log line. `check` is called
    with a text value when it is read and raises ValueError saying why the value is refused.
    """
    metadata = {"doc": doc, "minimum": minimum, "maximum": maximum, "choices": choices, "check": check}
    return field(default=default, repr=not secret, metadata=metadata)

