"""The one way text reaches a PDF paragraph: escaped, so it prints as typed.

reportlab's Paragraph reads its text as XML-like markup: an unclosed ``<b>`` in a
deviation's resolution made a lot's certificate fail for ever, and ``<img src=...>`` or
``<a href=...>`` would make it open a local file or carry a link. Every Paragraph in
lims.documents is built by :func:`paragraph`, which escapes what it is given; the only
markup in a document is what this module itself writes.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph

# C0/C1 controls other than tab and newline: they print as nothing useful and some PDF
# readers stop at them; a space keeps the words apart.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: object) -> str:
    """``text`` as paragraph markup that shows exactly ``text`` (no tags, no entities)."""
    return escape(_CONTROLS.sub(" ", str(text)))


def paragraph(text: object, style: ParagraphStyle) -> Paragraph:
    """A paragraph that prints ``text`` literally: ``<0.5 EU/mL`` stays ``<0.5 EU/mL``."""
    return Paragraph(plain(text), style)
