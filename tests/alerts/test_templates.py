import dataclasses
from string import Formatter

from vigint.alerts import templates
from vigint.config import AlertSettings
from vigint.store import Incident

NEW_YEAR = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
INCIDENT = Incident(7, 3, 1, "entrée", NEW_YEAR, NEW_YEAR + 425, "motion", "", 1, "clips/3/7.mp4", "not_checked",
                    "pending", offline=True)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def test_every_language_says_everything_with_the_same_placeholders():
    english = templates.TEMPLATES["en"]
    for language, template in templates.TEMPLATES.items():
        assert template.keys() == english.keys(), language
        assert template["kinds"].keys() == english["kinds"].keys(), language
        for key, text in template.items():
            if isinstance(text, str):
                assert placeholders(text) == placeholders(english[key]), (language, key)
    [choices] = [field.metadata["choices"] for field in dataclasses.fields(AlertSettings) if field.name == "language"]
    assert choices == templates.LANGUAGES  # the server's language is one alerts are written in


def test_the_client_s_language_wins_unless_it_is_unset_or_unknown():
    assert templates.choose_language("fr", "en") == "fr"
    assert templates.choose_language(None, "fr") == "fr"
    assert templates.choose_language("de", "en") == "en"  # written by another version: the server's


def test_times_are_written_as_each_language_does_in_the_client_s_zone():
    assert templates.when(NEW_YEAR, "en", "Europe/Paris") == "2026-01-01 01:00:00 CET"
    assert templates.when(NEW_YEAR, "fr", "Europe/Paris") == "01/01/2026 à 01:00:00 CET"
    assert templates.when(NEW_YEAR + 181 * 86400, "fr", "Europe/Paris") == "01/07/2026 à 02:00:00 CEST"
    assert templates.when(NEW_YEAR, "en", "America/New_York") == "2025-12-31 19:00:00 EST"


def test_an_offline_incident_says_when_it_was_recorded_and_a_live_one_does_not():
    assert templates.offline_note(INCIDENT, "en", "UTC") == ("Recorded 2026-01-01 00:00:00–00:07:05 UTC while the "
                                                             "camera could not reach Vigint; sent once the "
                                                             "connection was back.")
    assert templates.offline_note(INCIDENT, "fr", "Europe/Paris") == (
        "Enregistré le 01/01/2026 de 01:00:00 à 01:07:05 CET, pendant que la caméra ne pouvait pas joindre Vigint ; "
        "envoyé une fois la connexion rétablie.")
    overnight = dataclasses.replace(INCIDENT, started_at=NEW_YEAR - 120)
    assert templates.offline_note(overnight, "fr", "UTC").startswith(
        "Enregistré du 31/12/2025 à 23:58:00 au 01/01/2026 à 00:07:05 UTC,")
    assert templates.offline_note(dataclasses.replace(INCIDENT, offline=False)) == ""


def test_camera_events_say_when_in_the_client_s_zone_and_how_much_footage_is_being_recovered():
    assert templates.camera_down("door", NEW_YEAR, "en", "Asia/Tokyo") == (
        'Camera "door" has sent no video since 2026-01-01 09:00:00 JST.')
    assert templates.camera_back("door", NEW_YEAR, None, "en", "UTC") == (
        'Camera "door" has been streaming again since 2026-01-01 00:00:00 UTC.')
    assert templates.camera_back("door", NEW_YEAR, 240, "en", "UTC").endswith(
        "; 4 min of footage recorded while it was offline is being recovered.")
    assert templates.camera_back("door", NEW_YEAR, 40, "en", "UTC").endswith("; 40 s of footage recorded while it "
                                                                             "was offline is being recovered.")
    assert templates.camera_back("porte", NEW_YEAR, 240, "fr", "Europe/Paris") == (
        "La caméra « porte » transmet de nouveau la vidéo depuis le 01/01/2026 à 01:00:00 CET ; les 4 min de "
        "vidéo enregistrées pendant la coupure sont en cours de récupération.")
