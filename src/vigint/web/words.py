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
    "Incidents": "Incidents",
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


def translator(language: str) -> Callable[[str], str]:
    """Return `_` for `language`: the French of an English text, or the text itself (English, or not translated)."""
    if language == "fr":
        return lambda text: FRENCH.get(text, text)
    return lambda text: text
