"""Refresh the UI text catalogues: ``python -m api.web.catalogue``.

Extracts every ``_()`` / ``N_()`` text from the templates and the web modules, adds the
domain's own names that pages translate (the order timeline's), merges the result into
each language's .po (kept translations stay, new texts arrive empty, gone ones are marked
obsolete) and compiles the .mo files the pages load. Translators edit the .po; run this
again to compile.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from api.web.i18n import DEFAULT, LANGUAGES, LOCALE_DIR, domain_texts

WEB = Path(__file__).parent
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def template() -> Catalog:
    """Every text the web pages translate, with where it is used."""
    catalog = Catalog(project="lims", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(WEB), METHODS, options_map=OPTIONS, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    for text, where in domain_texts():
        catalog.add(text, None, [(where, 0)])
    return catalog


def refresh() -> list[Path]:
    """Merge the template into every language's .po and compile it; the files written."""
    pot = template()
    written = []
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        folder = LOCALE_DIR / language / "LC_MESSAGES"
        folder.mkdir(parents=True, exist_ok=True)
        po_path = folder / "messages.po"
        if po_path.exists():
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            catalog = Catalog(locale=language, project="lims")
        catalog.update(pot, update_creation_date=False)
        catalog.fuzzy = False
        with po_path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=True)
        with (folder / "messages.mo").open("wb") as handle:
            write_mo(handle, catalog)
        written += [po_path, folder / "messages.mo"]
    return written


if __name__ == "__main__":
    for path in refresh():
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    sys.exit(0)
