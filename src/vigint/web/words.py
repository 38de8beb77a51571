"""The page's words in each language a customer may read: English is written in the templates, French here.

A template says `{{ _("Cameras") }}`; a French client reads `FRENCH["Cameras"]`. English text as the key keeps the
templates readable and a missing translation visible (a test lists every `_()` of the templates and of the page's
code and checks that each has its French). A client's language is its own (`vigint client update --language`),
else the server's `[alerts] language`; a page seen before sign-in follows the browser's Accept-Language.

Dates are written here too, with the days' and months' names spelt out rather than taken from the C library's
locale (`%a`, `%b`), which depends on how the server was started: `Fri 27 Nov 2026` and `ven. 27 nov. 2026`.
"""

from collections.abc import Callable
from datetime import date, datetime

from markupsafe import Markup

LANGUAGES = ("en", "fr")

FRENCH: dict[str, str] = {
    # Every page: the header, sign-in, account and invoices, hand-over, messages
    "Incidents": "Incidents",
    "Cameras": "Caméras",
    "Usage &amp; invoices": "Consommation et factures",
    "Sign out": "Se déconnecter",
    "Sign in": "Connexion",
    "Sign in to Vigint": "Connexion à Vigint",
    "If this address is a Vigint customer's, a sign-in link is on its way to it. It works once, for a few minutes.":
        "Si cette adresse est celle d'un client Vigint, un lien de connexion vient de lui être envoyé. Il ne "
        "fonctionne qu'une fois, pendant quelques minutes.",
    "This service does not email sign-in links: ask your Vigint operator for one.":
        "Ce service n'envoie pas de lien de connexion par e-mail : demandez-en un à votre opérateur Vigint.",
    "Vigint signs you in with a link, no password. Enter your email address and we will send you one.":
        "Vigint vous connecte par un lien, sans mot de passe. Saisissez votre adresse e-mail et nous vous en "
        "enverrons un.",
    "Email address": "Adresse e-mail",
    "you@example.com": "vous@exemple.fr",
    "Email me a link": "Recevoir un lien par e-mail",
    "This link works once.": "Ce lien ne fonctionne qu'une fois.",
    "Continue": "Continuer",
    "This link no longer works": "Ce lien ne fonctionne plus",
    "Sign-in links work once, for a few minutes. Ask for a new one.":
        "Un lien de connexion ne fonctionne qu'une fois, pendant quelques minutes. Demandez-en un nouveau.",
    "A key's hand-over link works once, for a limited time. If you did not see your key, ask your Vigint operator "
    "for a new link.":
        "Le lien de remise d'une clé ne fonctionne qu'une fois, pendant une durée limitée. Si vous n'avez pas vu "
        "votre clé, demandez un nouveau lien à votre opérateur Vigint.",
    "Sent from another site": "Envoyé depuis un autre site",
    "This form was sent from another site, so it was not acted on. Open this page yourself and send it from here.":
        "Ce formulaire a été envoyé depuis un autre site : il n'a donc pas été pris en compte. Ouvrez vous-même "
        "cette page et envoyez-le depuis celle-ci.",
    "Usage and invoices": "Consommation et factures",
    "Usage in %(month)s, so far": "Consommation de %(month)s, à ce jour",
    "Camera streaming": "Diffusion des caméras",
    "%(hours)s hours": "%(hours)s heures",
    "Video received": "Vidéo reçue",
    "%(gigabytes)s GB": "%(gigabytes)s Go",
    "Footage recovered after outages": "Vidéo récupérée après des coupures",
    "Alerts sent": "Alertes envoyées",
    "Invoices": "Factures",
    "Number": "Numéro",
    "Period": "Période",
    "Issued": "Émise le",
    "Total": "Total",
    "Credit note %(number)s": "Avoir %(number)s",
    "Invoice %(number)s": "Facture %(number)s",
    "(voided by %(number)s)": "(annulée par l'avoir %(number)s)",
    "No invoice yet.": "Aucune facture pour l'instant.",
    "Your API key": "Votre clé d'API",
    "Your Vigint API key": "Votre clé d'API Vigint",
    "This link shows the API key of your Vigint agent <b>once</b>. Open it on the computer beside your cameras, "
    "or somewhere you can copy the key from safely.":
        "Ce lien affiche la clé d'API de votre agent Vigint <b>une seule fois</b>. Ouvrez-le sur l'ordinateur "
        "installé près de vos caméras, ou là où vous pouvez copier la clé en toute sécurité.",
    "Show my API key": "Afficher ma clé d'API",
    "The link works until %(until)s, and only once. The key works once you have seen it.":
        "Le lien fonctionne jusqu'au %(until)s, une seule fois. La clé fonctionne dès que vous l'avez vue.",
    "This is the only time this page shows the key: copy it now. Nobody, not even your operator, can show it "
    "again.":
        "C'est la seule fois que cette page affiche la clé : copiez-la maintenant. Personne, pas même votre "
        "opérateur, ne pourra l'afficher de nouveau.",
    "API key": "Clé d'API",
    "Copy": "Copier",
    "Copied": "Copié",
    "For the <code>.env</code> file next to <code>vigint agent</code> (then <code>chmod 600 .env</code>):":
        "Pour le fichier <code>.env</code> placé à côté de <code>vigint agent</code> (puis "
        "<code>chmod 600 .env</code>) :",
    "Then check the set-up with <code>vigint agent --source test</code>.":
        "Vérifiez ensuite l'installation avec <code>vigint agent --source test</code>.",

    # The cameras, their state and settings (schedule, masks, sensitivity, mute)

    # Incidents, their review, and the alert emails' mute links

}

# Dates: the French abbreviations are the usual ones (those of the Unicode CLDR, as a French calendar prints them).
DAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")}
SHORT_MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
                "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
                       "déc.")}
MONTHS = {"en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December"),
          "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre")}
DAY_FORMAT = {"en": "%Y-%m-%d", "fr": "%d/%m/%Y"}  # as the alert emails write a day
DECIMAL_POINT = {"en": ".", "fr": ","}


def translator(language: str) -> Callable[[str], Markup]:
    """Return `_` for `language`: the French of an English text, or the text itself (English, or not translated).

    Our own texts are HTML (`<b>once</b>`), as Jinja's own gettext treats them: what is put in them goes through
    `%`, which escapes it (`_("Invoice %(number)s") % {"number": ...}`). Only texts written in our code go through
    `_`, never one a requester chose."""
    if language == "fr":
        return lambda text: Markup(FRENCH.get(text, text))
    return Markup


def _(text: str) -> str:
    """Mark an English text that the page's code hands to a template (a message's title), which translates it with
    `{{ _(title) }}`: the mark is how the catalogue's test finds the text."""
    return text


def moment(when: datetime, language: str) -> str:
    """`Fri 27 Nov 2026, 14:03:12 CET`, `ven. 27 nov. 2026, 14:03:12 CET`: the day and month by name, the zone's
    abbreviation always (a customer travelling, or a camera in another zone, knows which time it is)."""
    language = language if language in DAYS else "en"
    return (f"{DAYS[language][when.weekday()]} {when.day:02d} {SHORT_MONTHS[language][when.month - 1]} {when.year}, "
            f"{when.strftime('%H:%M:%S %Z')}")


def month(when: date | str, language: str) -> str:
    """A month (a date's, or a YYYY-MM one as it is, if malformed): `November 2026`, `novembre 2026`."""
    if isinstance(when, str):
        try:
            when = date.fromisoformat(f"{when}-01")
        except ValueError:
            return when
    return f"{MONTHS[language if language in MONTHS else 'en'][when.month - 1]} {when.year}"


def day(iso: str, language: str) -> str:
    """A YYYY-MM-DD day as `language` writes it: `2026-01-31`, `31/01/2026` (a malformed one as it is)."""
    try:
        return date.fromisoformat(iso).strftime(DAY_FORMAT.get(language, DAY_FORMAT["en"]))
    except ValueError:
        return iso


def decimal(number: float, digits: int, language: str) -> str:
    """`1.5` in English, `1,5` in French."""
    return f"{number:.{digits}f}".replace(".", DECIMAL_POINT.get(language, "."))
