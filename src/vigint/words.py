"""Counts in words, for people: "1 client", "2 clients", never "1 clients" or "2 client(s)"."""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """Return `count` with `noun`, in the plural unless the count is 1 ("0 clients", "1 client", "1,200
    clients"); `many` is the plural of a noun that takes more than an s ("1 address", "2 addresses")."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"
