"""The console's words in English and French, and which language a request gets.

The language is ``?lang=en|fr`` (remembered in a cookie), else that cookie, else the first of
English or French in ``Accept-Language``, else English. English is the reference: the
accessible names tests and screen readers look for ("API token", "Sign in", "New campaign",
...) are the English texts; French is shown only to whoever asks for it.

Numbers are formatted here (``12,345`` / ``12 345``); dates are sent as ISO 8601 in
``<time datetime>`` and shown in the reader's own zone and locale by the browser
(``static/console.js``), UTC when scripts are off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from fastapi import Request

from dispatcher.states import MessageState

__all__ = ["LANGUAGES", "TEXTS", "format_number", "language_of", "translator"]

LANGUAGES: Final = ("en", "fr")
LANG_COOKIE: Final = "console_lang"
_MESSAGE_STATES: Final = tuple(MessageState)

TEXTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {},
    "fr": {
        "API token": "Jeton d’API",
        "Sign in": "Se connecter",
        "Sign out": "Se déconnecter",
        "Signed out.": "Déconnecté.",
        "That token is not the API token.": "Ce jeton n’est pas le jeton d’API.",
        "Sign in with the API token (DISPATCHER_API_TOKEN).": (
            "Connectez-vous avec le jeton d’API (DISPATCHER_API_TOKEN)."
        ),
        "The console is off: set DISPATCHER_API_TOKEN to open it.": (
            "La console est fermée : définissez DISPATCHER_API_TOKEN pour l’ouvrir."
        ),
        "Campaigns": "Campagnes",
        "New campaign": "Nouvelle campagne",
        "Replies": "Réponses",
        "Opt-outs": "Désinscriptions",
        "All": "Toutes",
        "State": "État",
        "Provider": "Fournisseur",
        "Name": "Nom",
        "Progress": "Progression",
        "Sent": "Envoyés",
        "Delivered": "Délivrés",
        "Failed": "Échecs",
        "Start time": "Début",
        "Created": "Créée",
        "No campaign yet.": "Aucune campagne pour l’instant.",
        "Previous": "Précédent",
        "Next": "Suivant",
        "Page": "Page",
        "of": "sur",
        "Recipients file": "Fichier des destinataires",
        "CSV or Parquet, with a phone column.": "CSV ou Parquet, avec une colonne de téléphone.",
        "Message": "Message",
        "Placeholders from the file:": "Champs du fichier :",
        "Sender": "Expéditeur",
        "Campaign name": "Nom de la campagne",
        "Priority": "Priorité",
        "High": "Haute",
        "Normal": "Normale",
        "Low": "Basse",
        "Share of the account beside its other campaigns.": (
            "Part du compte à côté de ses autres campagnes."
        ),
        "Start at": "Début à",
        "Empty: when you press Start.": "Vide : quand vous appuyez sur Démarrer.",
        "Send after": "Envoyer après",
        "Validity": "Validité",
        "Sending window": "Plage d'envoi",
        "Sending days": "Jours d'envoi",
        "In each recipient's time zone. Empty: the configured hours.": (
            "Dans le fuseau de chaque destinataire. Vide : les heures configurées."
        ),
        "Any time (transactional)": "À toute heure (transactionnel)",
        "Phone column": "Colonne de téléphone",
        "Empty: found by its name.": "Vide : trouvée par son nom.",
        "Replace typographic characters (smart encoding)": (
            "Remplacer les caractères typographiques (encodage intelligent)"
        ),
        "Estimate": "Estimer",
        "Create campaign": "Créer la campagne",
        "Download reject report": "Télécharger le rapport des rejets",
        "characters": "caractères",
        "parts": "parties",
        "Rows": "Lignes",
        "Valid": "Valides",
        "Invalid": "Invalides",
        "Duplicates": "Doublons",
        "Suppressed": "Désinscrits",
        "Parts": "Parties",
        "Cost": "Coût",
        "Encoding": "Encodage",
        "Messages of N parts": "Messages de N parties",
        "Characters forcing UCS-2": "Caractères qui imposent l’UCS-2",
        "First rejected rows": "Premières lignes rejetées",
        "Line": "Ligne",
        "Number": "Numéro",
        "Reason": "Raison",
        "Nothing is stored until you press Create campaign.": (
            "Rien n’est enregistré avant « Créer la campagne »."
        ),
        "Start": "Démarrer",
        "Pause": "Pause",
        "Resume": "Reprendre",
        "Cancel": "Annuler",
        "Retry failed": "Relancer les échecs",
        "Delete draft": "Supprimer le brouillon",
        "Download results": "Télécharger les résultats",
        "Handed over": "Remis",
        "Final": "Finaux",
        "Failures by reason": "Échecs par raison",
        "In doubt": "Incertains",
        "Resend": "Renvoyer",
        "Mark sent": "Marquer envoyés",
        "Recipients": "Destinataires",
        "Provider id": "Id fournisseur",
        "Submitted": "Soumis",
        "Final at": "Final à",
        "Sends and deliveries over time": "Envois et remises dans le temps",
        "sends": "envois",
        "deliveries": "remises",
        "draft": "brouillon",
        "scheduled": "programmée",
        "running": "en cours",
        "paused": "en pause",
        "completed": "terminée",
        "cancelled": "annulée",
        "Draft: not started.": "Brouillon : pas démarrée.",
        "Scheduled: starts at": "Programmée : démarre le",
        "Paused since": "En pause depuis",
        "Cancelled.": "Annulée.",
        "Completed.": "Terminée.",
        "Sending.": "Envoi en cours.",
        "Sent; awaiting": "Envoyée ; en attente de",
        "delivery reports until": "rapports de remise jusqu’au",
        "Sent; some in doubt: settle them below.": (
            "Envoyée ; certains envois incertains : à régler ci-dessous."
        ),
        "The form expired or did not come from this console.": (
            "Le formulaire a expiré ou ne vient pas de cette console."
        ),
        "Error": "Erreur",
        "From": "De",
        "Text": "Texte",
        "Received": "Reçu",
        "Campaign": "Campagne",
        "Added": "Ajouté",
        "No reply yet.": "Aucune réponse pour l’instant.",
        "No opt-out yet.": "Aucune désinscription pour l’instant.",
        "Columns of the file": "Colonnes du fichier",
        "Choose the file again to create the campaign.": (
            "Choisissez à nouveau le fichier pour créer la campagne."
        ),
        "Time zone": "Fuseau horaire",
        "Rate limit in use": "Débit utilisé",
        "state:pending": "en attente",
        "state:queued": "en file",
        "state:sending": "en envoi",
        "state:submitted": "soumis",
        "state:sent": "envoyé",
        "state:delivered": "délivré",
        "state:undeliverable": "non délivrable",
        "state:failed": "échec",
        "state:expired": "expiré",
        "state:unknown": "inconnu",
        "state:in_doubt": "incertain",
        "state:cancelled": "annulé",
        "Test number": "Numéro de test",
        "Send test": "Envoyer un test",
        "calls in the last second": "appels dans la dernière seconde",
    },
}


def language_of(request: Request) -> str:
    """``?lang=``, then the cookie, then ``Accept-Language``; English by default."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if asked in LANGUAGES:
        return asked
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def translator(language: str) -> dict[str, str]:
    """The words of ``language`` (English words are their own translation; a recipient's
    state is asked as ``state:<name>``, and is its own name in English)."""
    words = {f"state:{name}": name for name in _MESSAGE_STATES}
    return {**words, **TEXTS.get(language, {})}


def format_number(value: float | int, language: str, decimals: int = 0) -> str:
    """``12,345.6`` in English, ``12 345,6`` in French (narrow no-break space)."""
    text = f"{value:,.{decimals}f}"
    if language == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text
