"""The page's words: every text a template or the page's code shows has its French, none is left over, no
text escapes translation; dates are written as each language writes them, in the client's zone with its
rules."""

import ast
import html.parser
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import jinja2.ext

from vigint.store import Client, ClientStatus
from vigint.web import formats, words
from vigint.web.base import environment, zone_of

WEB = Path(words.__file__).parent
TEMPLATES = WEB / "templates"
# Shown as they are in every language: the brand, and the .env lines an agent reads.
SAME_IN_EVERY_LANGUAGE = {"Vigint", "VIGINT_API_KEY=", "VIGINT_SERVER_URL="}
VISIBLE_ATTRIBUTES = ("placeholder", "aria-label", "title", "alt", "data-copied")


def template_texts() -> dict[str, set[str]]:
    """Every `_("...")` literal of each template, found by Jinja's own parser."""
    env = jinja2.Environment(autoescape=True)
    found = {}
    for path in sorted(TEMPLATES.glob("*.html")):
        calls = jinja2.ext.extract_from_ast(env.parse(path.read_text()), ("_",))
        found[path.name] = {message for _line, _function, message in calls if isinstance(message, str)}
    return found


def code_texts() -> dict[str, set[str]]:
    """Every `_("...")` literal of the page's Python code (implicitly joined strings as Python joins them)."""
    found = {}
    for path in sorted(WEB.glob("*.py")):
        calls = [node for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"]
        found[path.name] = {call.args[0].value for call in calls
                            if call.args and isinstance(call.args[0], ast.Constant)
                            and isinstance(call.args[0].value, str)}
    return found


def used_texts() -> dict[str, set[str]]:
    return {**template_texts(), **code_texts()}


def test_every_text_of_the_page_has_its_french():
    missing = sorted(f"{name}: {text!r}" for name, texts in used_texts().items() for text in texts
                     if text not in words.FRENCH)
    assert not missing, "texts without their French in vigint/web/words.py FRENCH:\n" + "\n".join(missing)


def test_the_french_catalogue_holds_no_text_the_page_no_longer_shows():
    used = set().union(*used_texts().values())
    stale = sorted(text for text in words.FRENCH if text not in used)
    assert not stale, "FRENCH texts no template nor page code shows any more:\n" + "\n".join(map(repr, stale))


class VisibleText(html.parser.HTMLParser):
    """The words a template shows outside `_()`: its HTML's text and readable attributes, once every `{{ }}`,
    `{% %}` and `{# #}` is taken out (what they show is translated, or the customer's own: a camera's
    name)."""

    def __init__(self):
        super().__init__()
        self.texts, self._skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self._skipping += tag in ("style", "script")
        self.texts += [value for name, value in attrs if name in VISIBLE_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        self._skipping -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skipping:
            self.texts.append(data)


def untranslated(source: str) -> list[str]:
    parser = VisibleText()
    parser.feed(re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", source, flags=re.DOTALL))
    pieces = (piece.strip(" ·:()\n") for text in parser.texts for piece in re.split(r"\s*\n\s*|\s{2,}", text))
    return [piece for piece in pieces
            if re.search(r"[^\W\d_]", piece) and piece not in SAME_IN_EVERY_LANGUAGE]


def test_no_template_shows_a_word_outside_the_catalogue():
    found = {path.name: untranslated(path.read_text()) for path in sorted(TEMPLATES.glob("*.html"))}
    listed = [f"{name}: {text!r}" for name, texts in found.items() for text in dict.fromkeys(texts)]
    assert not listed, "texts shown without _() (French readers would see English):\n" + "\n".join(listed)


def test_our_texts_are_html_and_what_goes_in_them_is_escaped():
    french = words.translator("fr")
    assert french("Sign out") == "Se déconnecter" and french("Not in the catalogue") == "Not in the catalogue"
    shown = french("Invoice %(number)s") % {"number": "<script>"}
    assert shown == "Facture &lt;script&gt;"
    assert words.translator("en")("Invoice %(number)s") % {"number": "<b>"} == "Invoice &lt;b&gt;"


def test_a_moment_is_written_as_each_language_writes_it_whatever_the_c_locale():
    paris = datetime(2026, 11, 27, 14, 3, 12, tzinfo=ZoneInfo("Europe/Paris"))
    assert formats.moment(paris, "en") == "Fri 27 Nov 2026, 14:03:12 CET"
    assert formats.moment(paris, "fr") == "ven. 27 nov. 2026, 14:03:12 CET"
    assert formats.moment(paris.replace(month=8, day=2), "fr") == "dim. 02 août 2026, 14:03:12 CEST"
    assert formats.month(paris, "fr") == "novembre 2026" and formats.month("2026-02", "fr") == "février 2026"
    assert formats.month("2026-13", "fr") == "2026-13"  # shown as stored rather than not at all
    assert formats.day("2026-01-31", "fr") == "31/01/2026" and formats.day("2026-01-31", "en") == "2026-01-31"
    assert formats.decimal(1.25, 1, "fr") == "1,2" and formats.decimal(1234.5, 2, "en") == "1234.50"


def client(timezone: str | None) -> Client:
    return Client(1, "Acme", "ops@acme.test", ClientStatus.ACTIVE, 0.0, 0.0, timezone=timezone)


def test_a_time_months_away_is_shown_with_its_own_offset_not_todays():
    zone = zone_of(client("Europe/Paris"))
    summer = datetime(2026, 7, 14, 10, tzinfo=ZoneInfo("UTC")).timestamp()
    winter = datetime(2026, 1, 14, 10, tzinfo=ZoneInfo("UTC")).timestamp()
    page = environment(TEMPLATES).from_string("{{ summer | when(zone) }} / {{ winter | when(zone) }}")
    assert page.render(summer=summer, winter=winter, zone=zone, lang="fr") == (
        "mar. 14 juil. 2026, 12:00:00 CEST / mer. 14 janv. 2026, 11:00:00 CET")
    # An unknown or missing zone is the server's, with its rules too: never an error on the page.
    assert zone_of(client("Nowhere/Atlantis")) is zone_of(None) is zone_of(client(""))
    assert datetime.fromtimestamp(summer, zone_of(None)).utcoffset() == datetime.fromtimestamp(
        summer).astimezone().utcoffset()
