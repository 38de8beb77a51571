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
    "latest still": "dernière image",
    "live": "en direct",
    "down since": "hors service depuis",
    "not streaming": "ne diffuse pas",
    "Settings": "Réglages",
    "Last seen": "Vue pour la dernière fois",
    "1 incident today": "1 incident aujourd'hui",
    "{count} incidents today": "{count} incidents aujourd'hui",
    "No camera has streamed yet. Run vigint agent beside your cameras.":
        "Aucune caméra n'a encore diffusé. Lancez vigint agent à côté de vos caméras.",
    "Set up a camera by its name (as its agent will stream it):":
        "Régler une caméra par son nom (celui sous lequel son agent la diffusera) :",
    "Set up": "Régler",
    "A camera's name is 1 to 64 letters, digits, spaces, '.', '_' or '-'.":
        "Le nom d'une caméra compte 1 à 64 lettres, chiffres, espaces, « . », « _ » ou « - ».",
    "Saved.": "Enregistré.",
    "Not saved:": "Non enregistré :",
    "When it is armed": "Quand elle est armée",
    "Always": "Toujours",
    "Never": "Jamais",
    "On a schedule:": "Selon un horaire :",
    "Mon-Sat 20:00-08:00, Sun": "Lun-Sam 20:00-08:00, Dim",
    "Mon-Fri 09:00-18:00, Sat 10:00-16:00": "Lun-Ven 09:00-18:00, Sam 10:00-16:00",
    "Days and hours when it is armed, on your clock: Mon-Sat 20:00-08:00, Sun is armed every evening until "
    "08:00 the next morning, and all Sunday. A range that ends before it starts goes past midnight.":
        "Jours et heures où elle est armée, à votre heure : Lun-Sam 20:00-08:00, Dim l'arme chaque soir "
        "jusqu'à 08:00 le lendemain matin, et tout le dimanche. Une plage qui finit avant de commencer passe"
        " minuit.",
    "Save when it is armed": "Enregistrer l'horaire",
    "Armed outside opening hours": "Armée hors des heures d'ouverture",
    "Opening hours:": "Heures d'ouverture :",
    "Arm outside these hours": "Armer hors de ces heures",
    "Mute": "Sourdine",
    "Mute for 1 h": "Sourdine pendant 1 h",
    "Mute until tomorrow morning": "Sourdine jusqu'à demain matin",
    "Unmute": "Fin de la sourdine",
    "A muted camera records no incident and sends no alert. Tomorrow morning is 08:00 on your clock (this "
    "morning's if you mute before 04:00); then its schedule applies again.":
        "Une caméra en sourdine n'enregistre aucun incident et n'envoie aucune alerte. Demain matin, c'est "
        "08:00 à votre heure (ce matin si vous la mettez en sourdine avant 04:00) ; puis son horaire "
        "s'applique de nouveau.",
    "What it ignores, and how much motion counts": "Ce qu'elle ignore, et quel mouvement compte",
    "The camera's latest picture": "La dernière image de la caméra",
    "Draw rectangles": "Dessiner des rectangles",
    "Draw a polygon": "Dessiner un polygone",
    "Close the polygon": "Fermer le polygone",
    "Remove the selected mask": "Supprimer le masque choisi",
    "Drag over the picture to draw a rectangle; for a polygon, tap its corners, then tap the first corner "
    "again or Close. Tap a mask to select it.":
        "Faites glisser sur l'image pour dessiner un rectangle ; pour un polygone, touchez ses coins, puis "
        "de nouveau le premier, ou Fermer. Touchez un masque pour le choisir.",
    "Masks, one per line:": "Masques, un par ligne :",
    "Motion inside a mask is ignored. Write a rectangle as x,y,w,h (its top left corner, width and height), "
    "such as 0,0.5,0.25,0.5 for the left quarter of the bottom half; a polygon as its corners x y separated "
    "by commas, such as 0.1 0.2, 0.6 0.2, 0.4 0.7. Numbers are fractions of the picture, 0 to 1 from the top"
    " left corner. At most 32 masks of 64 corners. Blank: the default (normally none).":
        "Le mouvement dans un masque est ignoré. Écrivez un rectangle x,y,l,h (son coin en haut à gauche, sa"
        " largeur et sa hauteur), par exemple 0,0.5,0.25,0.5 pour le quart gauche de la moitié basse ; un "
        "polygone par ses coins x y séparés par des virgules, par exemple 0.1 0.2, 0.6 0.2, 0.4 0.7. Les "
        "nombres sont des fractions de l'image, de 0 à 1 depuis le coin en haut à gauche, avec un point "
        "décimal. Au plus 32 masques de 64 coins. Vide : le réglage par défaut (en général aucun).",
    "Sensitivity:": "Sensibilité :",
    "From 0.1 to 10: 2 sees fainter changes, 0.5 only strong ones. Blank: the default.":
        "De 0.1 à 10 : 2 voit des changements plus faibles, 0.5 seulement les forts. Vide : le réglage par "
        "défaut.",
    "Save masks and sensitivity": "Enregistrer masques et sensibilité",
    # A camera's live view
    "Live": "En direct",
    "Watch live": "Voir en direct",
    "Live view": "Vue en direct",
    "%(minutes)s min": "%(minutes)s min",
    "now": "maintenant",
    "Too many live views of your cameras are open: close one (another tab, another phone) and reload this "
    "page.":
        "Trop de vues en direct de vos caméras sont ouvertes : fermez-en une (un autre onglet, un autre "
        "téléphone) et rechargez cette page.",
    "The service is showing as many live views as it can right now: try again in a minute.":
        "Le service affiche en ce moment autant de vues en direct qu'il le peut : réessayez dans une minute.",
    "live · {seconds} s behind": "en direct · {seconds} s de retard",
    "This live view has ended: reload the page to watch again.":
        "Cette vue en direct est terminée : rechargez la page pour regarder à nouveau.",
    "This live view stopped: the connection was too slow. Reload the page to watch again.":
        "Cette vue en direct s'est arrêtée : la connexion était trop lente. Rechargez la page pour regarder "
        "à nouveau.",
    "This browser cannot play live video: a new picture every 2 s.":
        "Ce navigateur ne peut pas lire la vidéo en direct : une nouvelle image toutes les 2 s.",
    "This camera is not streaming now: its live view starts when its agent streams again.":
        "Cette caméra ne diffuse pas en ce moment : sa vue en direct reprendra quand son agent diffusera à "
        "nouveau.",

    # A refused form (base.form_refused), on whatever page sent it
    "This form has expired": "Ce formulaire a expiré",
    "This form did not come from your page as it is now (it may be from another site, or from before you "
    "last signed in), so it was not acted on. Open the page again and send it from there.":
        "Ce formulaire ne vient pas de votre page telle qu'elle est maintenant (il vient peut-être d'un "
        "autre site, ou d'avant votre dernière connexion) : il n'a pas été pris en compte. Rouvrez la page "
        "et envoyez-le de là.",
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
