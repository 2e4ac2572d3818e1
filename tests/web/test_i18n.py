"""The UI text catalogues: every text the pages translate has its Japanese, the committed
.mo is the compiled .po, and the language is chosen as people expect."""

from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from api.web.catalogue import template
from api.web.i18n import LOCALE_DIR, negotiate

PO = LOCALE_DIR / "ja" / "LC_MESSAGES" / "messages.po"


def test_every_text_has_its_japanese_and_the_mo_is_compiled() -> None:
    with PO.open("rb") as handle:
        ja = read_po(handle, locale="ja")
    wanted = {m.id for m in template() if m.id}
    translated = {m.id for m in ja if m.id and m.string}
    untranslated = sorted(str(i) for i in wanted - translated)
    assert untranslated == [], "run python -m api.web.catalogue and translate: " + ", ".join(
        untranslated
    )
    compiled = BytesIO()
    write_mo(compiled, ja)
    assert (PO.parent / "messages.mo").read_bytes() == compiled.getvalue(), (
        "the .mo is stale: run python -m api.web.catalogue"
    )


def test_accept_language_picks_the_best_known_language() -> None:
    assert negotiate("ja-JP,ja;q=0.9,en-US;q=0.8") == "ja"
    assert negotiate("fr-FR,ja;q=0.5,en;q=0.9") == "en"
    assert negotiate("fr-FR, de;q=0.7") == "en"
    assert negotiate("en;q=0, ja;q=0.1") == "ja"
    assert negotiate("") == "en"
    assert negotiate(";;;,q=abc, xx-!!") == "en"
