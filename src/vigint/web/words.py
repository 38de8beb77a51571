"""The page's words in each language a customer may read: English is written in the templates, French here.

A template says `{{ _("Cameras") }}`; a French client reads `FRENCH["Cameras"]`. English text as the key keeps the
templates readable and a missing translation visible (a test lists every `_()` of the templates and of the page's
code and checks that each has its French). A client's language is its own (`vigint client update --language`),
else the server's `[alerts] language`; a page seen before sign-in follows the browser's Accept-Language.

How each language writes dates and numbers is in `formats`.
"""

from collections.abc import Callable

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
    "If this address is a Vigint customer's, a sign-in link is on its way to it. It works once, for a few "
    "minutes.":
        "Si cette adresse est celle d'un client Vigint, un lien de connexion vient de lui être envoyé. Il "
        "ne fonctionne qu'une fois, pendant quelques minutes.",
    "This service does not email sign-in links: ask your Vigint operator for one.":
        "Ce service n'envoie pas de lien de connexion par e-mail : demandez-en un à votre opérateur Vigint.",
    "Vigint signs you in with a link, no password. Enter your email address and we will send you one.":
        "Vigint vous connecte par un lien, sans mot de passe. Saisissez votre adresse e-mail et nous vous "
        "en enverrons un.",
    "Email address": "Adresse e-mail",
    "you@example.com": "vous@exemple.fr",
    "Email me a link": "Recevoir un lien par e-mail",
    "This link works once.": "Ce lien ne fonctionne qu'une fois.",
    "Continue": "Continuer",
    "This link no longer works": "Ce lien ne fonctionne plus",
    "Sign-in links work once, for a few minutes. Ask for a new one.":
        "Un lien de connexion ne fonctionne qu'une fois, pendant quelques minutes. Demandez-en un nouveau.",
    "A key's hand-over link works once, for a limited time. If you did not see your key, ask your Vigint "
    "operator for a new link.":
        "Le lien de remise d'une clé ne fonctionne qu'une fois, pendant une durée limitée. Si vous n'avez "
        "pas vu votre clé, demandez un nouveau lien à votre opérateur Vigint.",
    "Sent from another site": "Envoyé depuis un autre site",
    "This form was sent from another site, so it was not acted on. Open this page yourself and send it from "
    "here.":
        "Ce formulaire a été envoyé depuis un autre site : il n'a donc pas été pris en compte. Ouvrez "
        "vous-même cette page et envoyez-le depuis celle-ci.",
    "Usage and invoices": "Consommation et factures",
    "Usage in %(month)s, so far": "Consommation de %(month)s, à ce jour",
    "Camera streaming": "Temps de diffusion des caméras",
    "%(hours)s hours": "%(hours)s heures",
    "Video received": "Volume de vidéo reçu",
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
    "This link shows the API key of your Vigint agent <b>once</b>. Open it on the computer beside your "
    "cameras, or somewhere you can copy the key from safely.":
        "Ce lien affiche la clé d'API de votre agent Vigint <b>une seule fois</b>. Ouvrez-le sur "
        "l'ordinateur installé près de vos caméras, ou là où vous pouvez copier la clé en toute sécurité.",
    "Show my API key": "Afficher ma clé d'API",
    "The link works until %(until)s, and only once. The key works once you have seen it.":
        "Le lien fonctionne jusqu'au %(until)s, une seule fois. La clé fonctionne dès que vous l'avez vue.",
    "This is the only time this page shows the key: copy it now. Nobody, not even your operator, can show "
    "it again.":
        "C'est la seule fois que cette page affiche la clé : copiez-la maintenant. Personne, pas même votre "
        "opérateur, ne pourra l'afficher de nouveau.",
    "API key": "Clé d'API",
    "Copy": "Copier",
    "Copied": "Copié",
    "For the <code>.env</code> file next to <code>vigint agent</code> (then <code>chmod 600 .env</code>):":
        "Pour le fichier <code>.env</code> placé à côté de <code>vigint agent</code> (puis <code>chmod 600 "
        ".env</code>) :",
    "Then check the set-up with <code>vigint agent --source test</code>.":
        "Vérifiez ensuite l'installation avec <code>vigint agent --source test</code>.",

    # The cameras, their state and settings (schedule, masks, sensitivity, mute)

    # Incidents, their review, and the alert emails' mute links

}


def translator(language: str) -> Callable[[str], Markup]:
    """Return `_` for `language`: the French of an English text, or the text itself (English, or not there).

    Our own texts are HTML (`<b>once</b>`), as Jinja's own gettext treats them: what is put in them goes
    through `%`, which escapes it (`_("Invoice %(number)s") % {"number": ...}`). Only texts written in our
    code go through `_`, never one a requester chose."""
    if language == "fr":
        return lambda text: Markup(FRENCH.get(text, text))
    return Markup


def _(text: str) -> str:
    """Mark an English text that the page's code hands to a template (a message's title), which translates it
    with `{{ _(title) }}`: the mark is how the catalogue's test finds the text."""
    return text
