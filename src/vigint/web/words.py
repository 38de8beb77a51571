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
    "Cameras": "Caméras",
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
    # A refused form (base.form_refused), on whatever page sent it
    "This form has expired": "Ce formulaire a expiré",
    "This form did not come from your page as it is now (it may be from another site, or from before you "
    "last signed in), so it was not acted on. Open the page again and send it from there.":
        "Ce formulaire ne vient pas de votre page telle qu'elle est maintenant (il vient peut-être d'un "
        "autre site, ou d'avant votre dernière connexion) : il n'a pas été pris en compte. Rouvrez la page "
        "et envoyez-le de là.",
    # Incidents, their review, and the alert emails' mute links

}


def translator(language: str) -> Callable[[str], str]:
    """Return `_` for `language`: the French of an English text, or the text itself (English, or not translated)."""
    if language == "fr":
        return lambda text: FRENCH.get(text, text)
    return lambda text: text
