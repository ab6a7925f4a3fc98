"""Placeholder values: missing meaning dressed up as a value.

Real exports carry the choice a form started with ("Select", "--"), spreadsheet markers ("N/A",
"#N/A", "null") and "unknown" in the language of the team that typed it. Agents and learners
must read these as missing, not as facts.

Two layers:
- `is_placeholder_text(value)`: the known words and shapes, in the languages the books we meet
  use (English, Portuguese, Spanish, French, German, Italian). It knows nothing about a field, so
  "0" is not a placeholder here: whether 0 means "missing" for a number is the audit's call.
- `audited_placeholders(session)`: what the latest audit of the book found, per field, including
  values that are placeholders only by being far too frequent for their field.

Field keys are "<table>.<column>" or "<table>.attributes.<key>" (e.g. "contacts.title",
"accounts.country", "contacts.attributes.lead_type"); values are the stored value as text
(`value_text`).
"""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models.quality import QualityAudit, QualityFieldScore

# Compared after `_fold` (lower case, accents removed, inner whitespace collapsed, wrapping
# punctuation stripped), so "-- Não informado --" meets "nao informado".
PLACEHOLDER_WORDS: frozenset[str] = frozenset({
    # English
    "select", "select one", "select an option", "please select", "choose", "choose one", "pick one",
    "n/a", "n.a", "na", "n a", "not available", "not applicable", "none", "null", "nil", "nan",
    "unknown", "unkown", "undefined", "not provided", "not specified", "not set", "unspecified",
    "no data", "no info", "no information", "missing", "blank", "empty", "tbd", "tbc", "to be defined",
    "to be confirmed", "xxx", "xx", "x", "#n/a", "n/d", "nd", "placeholder", "dummy",
    "asdf", "no value", "not entered", "not given", "do not know", "dont know", "don't know", "not known",
    "tba", "to be announced", "please choose", "choose an option", "please select one", "select an item",
    "#value!", "#ref!", "#div/0!", "#null!", "#name?", "not disclosed",
    # Portuguese
    "desconhecido", "desconhecida", "nao informado", "nao informada", "nao se aplica", "sem informacao",
    "nao disponivel", "nenhum", "nenhuma", "selecione", "escolha", "nao sei", "sem dados",
    "nao definido", "indefinido", "nao especificado", "sem dado", "a definir", "a confirmar", "nao sabe",
    # Spanish
    "desconocido", "desconocida", "no disponible", "no aplica", "ninguno", "ninguna", "sin datos",
    "sin informacion", "seleccione", "seleccionar", "no especificado", "no informado", "sin dato", "por definir",
    # French
    "inconnu", "inconnue", "non renseigne", "non renseignee", "aucun", "aucune", "non disponible",
    "sans objet", "selectionner", "choisir", "non precise",
    # German
    "unbekannt", "keine angabe", "k.a", "k. a", "keine", "nicht verfugbar", "bitte wahlen", "auswahlen",
    # Italian
    "sconosciuto", "non disponibile", "nessuno", "non specificato", "seleziona",
})

_WRAPPING = " \t\r\n-_.:;*()[]{}<>#!?'\"=~|/\\"
_SPACES = re.compile(r"\s+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", plain.casefold()).strip(_WRAPPING)


def value_text(value: Any) -> str:
    """A stored value as the text audits record: numbers without trailing zeros, strings trimmed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, float)):
        number = Decimal(str(value))
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")
    return str(value).strip()


def is_placeholder_text(value: Any) -> bool:
    """True when `value` is a known placeholder word or only punctuation ("--", "?", "...").

    None and the empty string are missing, not placeholders: this answers False for them, so a
    caller counting placeholders counts only values someone (or a form) actually wrote.
    """
    if value is None or not isinstance(value, str):
        return False
    raw = value.strip()
    if not raw:
        return False
    folded = _fold(raw)
    if not any(ch.isalnum() for ch in folded):
        return True  # nothing but punctuation or symbols: "-", "--", "?", "...", "#", "—"
    if folded in PLACEHOLDER_WORDS or raw.casefold() in PLACEHOLDER_WORDS:
        return True  # the second form keeps spreadsheet errors whole: "#VALUE!", "#N/A"
    # "#N/A" and "(none)" keep their inner punctuation after stripping the wrapper only once.
    return _fold(folded.replace("/", " ").replace(".", " ")) in PLACEHOLDER_WORDS


def audited_placeholders(session: Session) -> dict[str, frozenset[str]]:
    """Field key -> values the latest audit found to be placeholders; {} when no audit has run."""
    latest = session.scalar(select(QualityAudit.id).order_by(QualityAudit.id.desc()).limit(1))
    if latest is None:
        return {}
    rows = session.execute(
        select(QualityFieldScore.field_key, QualityFieldScore.placeholders).where(QualityFieldScore.audit_id == latest)
    )
    return {key: frozenset(str(v) for v in values) for key, values in rows if values}


def is_missing(value: Any, field_key: str, audited: dict[str, frozenset[str]]) -> bool:
    """What a context builder or learner asks of one value: empty, a placeholder word, or audited as one."""
    if value is None:
        return True
    if isinstance(value, str) and not value.strip():
        return True
    if is_placeholder_text(value):
        return True
    found = audited.get(field_key)
    return bool(found) and value_text(value) in found


def known_or_none(value: str | None) -> str | None:
    """The value, or None when it is a placeholder word: what a context hands an agent for a name or title
    (an email must never greet "Dear Unknown" or call someone a "Select")."""
    return None if value is None or is_placeholder_text(value) else value
