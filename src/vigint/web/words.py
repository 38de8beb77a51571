"""The page's words in each language a customer may read: English is written in the templates, French here.

A template says `{{ _("Cameras") }}`; a French client reads `FRENCH["Cameras"]`. English text as the key keeps
the templates readable and a missing translation visible (a test lists every `_()` of the templates and of the
page's code and checks that each has its French). A client's language is its own
(`vigint client update --language`), else the server's `[alerts] language`; a page seen before sign-in follows
the browser's Accept-Language.

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
    "{camera}, incident {id}": "{camera}, incident {id}",
    "Download the clip": "Télécharger la séquence",
    "(still being recorded: reload for more)": "(enregistrement en cours : rechargez pour la suite)",
    "No clip was recorded for this incident.": "Aucune séquence n'a été enregistrée pour cet incident.",
    "No clip.": "Pas de séquence.",
    "still {number}": "image {number}",
    "What": "Quoi",
    "Started": "Début",
    "Ends": "Fin",
    "not yet: still going on": "pas encore : toujours en cours",
    "Lasted": "Durée",
    "AI check": "Vérification par IA",
    "threat {threat}/2": "menace {threat}/2",
    "Note": "Remarque",
    "Recorded while the camera could not reach Vigint, sent once the connection was back.":
        "Enregistré pendant que la caméra ne pouvait pas joindre Vigint, envoyé une fois la connexion "
        "rétablie.",
    "Review": "Examen",
    "False alarm": "Fausse alerte",
    "Reviewed": "Examiné",
    "Your review": "Votre examen",
    "The note is at most {limit} characters, without control characters: nothing was changed.":
        "La note fait au plus {limit} caractères, sans caractère de contrôle : rien n'a été modifié.",
    "That review is not one this page offers: nothing was changed.":
        "Cette page ne propose pas cet examen : rien n'a été modifié.",
    "Note (optional)": "Note (facultative)",
    "Not reviewed": "Non examiné",
    "Several false alarms a week from one camera hint that a mask or a lower sensitivity would help.":
        "Plusieurs fausses alertes par semaine d'une même caméra suggèrent qu'un masque ou une sensibilité "
        "plus basse aiderait.",
    "Camera": "Caméra",
    "All cameras": "Toutes les caméras",
    "1 false alarm": "1 fausse alerte",
    "{count} false alarms": "{count} fausses alertes",
    "All incidents": "Tous les incidents",
    "False alarms": "Fausses alertes",
    "Day": "Jour",
    "Show": "Afficher",
    "Show all": "Tout afficher",
    "False alarms in the last {days} days, by camera:":
        "Fausses alertes des {days} derniers jours, par caméra :",
    "draw a mask or lower the sensitivity": "dessinez un masque ou baissez la sensibilité",
    "That day is not a date (YYYY-MM-DD): showing every day.":
        "Ce jour n'est pas une date (AAAA-MM-JJ) : tous les jours sont affichés.",
    "{camera} at the start of incident {id}": "{camera} au début de l'incident {id}",
    "ongoing": "en cours",
    "AI: {verdict}": "IA : {verdict}",
    "recorded while offline": "enregistré hors connexion",
    "emailed": "envoyé par e-mail",
    "webhook sent": "webhook envoyé",
    "No incidents for this choice yet.": "Aucun incident pour ce choix pour l'instant.",
    "No incidents yet.": "Aucun incident pour l'instant.",
    "Newer": "Plus récents",
    "Older": "Plus anciens",
    "Mute a camera": "Mettre une caméra en sourdine",
    "Mute camera “{camera}”?": "Mettre la caméra « {camera} » en sourdine ?",
    "For one hour from now, it records no incident and sends no alert.":
        "Pendant une heure à partir de maintenant, elle n'enregistre aucun incident et n'envoie aucune "
        "alerte.",
    "Until 08:00 in the morning, it records no incident and sends no alert.":
        "Jusqu'à 8 h du matin, elle n'enregistre aucun incident et n'envoie aucune alerte.",
    "Its video is still received, and you are still told if it stops streaming.":
        "Sa vidéo est toujours reçue, et vous êtes toujours prévenu si elle cesse d'émettre.",
    "Mute for 1 hour": "Sourdine pendant 1 heure",
    "Mute until morning": "Sourdine jusqu'au matin",
    "Camera “{camera}” is muted": "La caméra « {camera} » est en sourdine",
    "To arm it again sooner, sign in to your Vigint page and change its settings.":
        "Pour la réarmer plus tôt, connectez-vous à votre page Vigint et modifiez ses réglages.",
    "Your cameras": "Vos caméras",
    "Nothing was muted": "Rien n'a été mis en sourdine",
    "This mute link was used already: each link works once.":
        "Ce lien de sourdine a déjà servi : chaque lien ne fonctionne qu'une fois.",
    "This camera could not be muted now. Sign in to your Vigint page to mute it.":
        "Cette caméra n'a pas pu être mise en sourdine. Connectez-vous à votre page Vigint pour le faire.",
    "This mute link is invalid or has expired (a link works for 24 hours).":
        "Ce lien de sourdine n'est pas valable ou a expiré (un lien fonctionne 24 heures).",
    "Mute a camera from your Vigint page": "Mettre une caméra en sourdine depuis votre page Vigint",

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
