"""UI text through gettext (Babel catalogues under api/web/locale): the language is the
one the person chose (a cookie set by the layout's language switch) or else the best
match for the browser's Accept-Language; English when nothing matches.

The catalogues are compiled (.mo) and committed; after editing a template, refresh them
with ``python -m api.web.catalogue`` (tests/web/test_i18n.py fails on a text without its
Japanese or a stale .mo).
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations
from fastapi import Request

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
# The languages with a catalogue (English is the templates' own text).
LANGUAGES = {"en": "English", "ja": "日本語"}
COOKIE = "lims_lang"
_current: ContextVar[str] = ContextVar("lims_language", default=DEFAULT)


@cache
def catalogue(language: str) -> NullTranslations:
    """The compiled catalogue of one language (English: the text as written)."""
    if language == DEFAULT:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [language], domain="messages")


def negotiate(accept_language: str) -> str:
    """The best of LANGUAGES for an Accept-Language header (quality order), or English."""
    wanted: list[tuple[float, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            wanted.append((-quality + index * 1e-6, tag.strip()))
    for _, tag in sorted(wanted):
        try:
            language = Locale.parse(tag.replace("-", "_")).language
        except (ValueError, UnknownLocaleError):
            continue
        if language in LANGUAGES:
            return language
    return DEFAULT


def language_of(request: Request) -> str:
    """The person's chosen language, else the browser's, else English."""
    chosen = request.cookies.get(COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("accept-language", ""))


def use(language: str) -> None:
    """Make ``language`` the one gettext answers in for the page being rendered."""
    _current.set(language if language in LANGUAGES else DEFAULT)


def current() -> str:
    return _current.get()


def N_(message: str) -> str:
    """Mark a text for the catalogue where it is defined; it is translated where shown."""
    return message


def domain_texts() -> list[tuple[str, str]]:
    """Texts from lims/ that pages translate (lims itself knows nothing of languages)."""
    from lims.orders import timeline

    names = [*timeline.ORDER_STATUS_NAMES.values(), *timeline.DOSE_STATE_NAMES.values()]
    return [(name, "lims/orders/timeline.py") for name in names]


def gettext(message: str) -> str:
    return catalogue(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalogue(_current.get()).ngettext(singular, plural, n)
