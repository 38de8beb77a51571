"""The page's words in each language a customer may read: English is written in the templates, French here.

A template says `{{ _("Cameras") }}`; a French client reads `FRENCH["Cameras"]`. English text as the key keeps the
templates readable and a missing translation visible (a test lists every `_()` of the templates and of the page's
code and checks that each has its French). A client's language is its own (`vigint client update --language`),
else the server's `[alerts] language`; a page seen before sign-in follows the browser's Accept-Language.
"""

from collections.abc import Callable

LANGUAGES = ("en", "fr")

FRENCH: dict[str, str] = {
    # Every page: the header, sign-in, account and invoices, hand-over, messages

    # The cameras, their state and settings (schedule, masks, sensitivity, mute)

    # Incidents, their review, and the alert emails' mute links

}


def translator(language: str) -> Callable[[str], str]:
    """Return `_` for `language`: the French of an English text, or the text itself (English, or not translated)."""
    if language == "fr":
        return lambda text: FRENCH.get(text, text)
    return lambda text: text
