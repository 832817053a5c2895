"""Text on its way to a terminal: shown, never interpreted.

Anything a program, a model, a server or a run directory wrote can hold escape sequences (clear
the screen, retitle the window, hide text, rewrite what a line says) or characters that reorder
a line (bidirectional overrides). Every such text passes through `terminal_text` before the
command line prints it: escape sequences are dropped, other control and format characters are
shown as `\\xNN` / `\\uNNNN`. Rich markup is never parsed from such text either: the live
display hands rich `Text` objects, not markup strings.
"""

from __future__ import annotations

import re
import unicodedata

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-character ESC sequences; and
# their 8-bit forms (CSI 0x9b, OSC 0x9d). The body of each is bounded, so the scan stays linear.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]{0,64}[ -/]{0,16}[@-~]?"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]{0,4096}(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]?"
)


def _shown(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _needs_escape(char: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: format characters such as bidi overrides and zero-width
    # joiners; Zl/Zp: line and paragraph separators, which some terminals break lines on.
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def terminal_text(text: object, keep_newlines: bool = False) -> str:
    """`text` as characters a terminal shows as they are.

    With `keep_newlines`, line breaks stay; otherwise the result is one line (breaks become
    spaces). Tabs stay either way.
    """
    out = _ESCAPE.sub("", str(text))
    if out.isascii() and out.isprintable():
        return out
    if not keep_newlines:
        out = out.replace("\r\n", " ").replace("\n", " ")
    keep = "\n\t" if keep_newlines else "\t"
    return "".join(_shown(c) if c not in keep and _needs_escape(c) else c for c in out)
