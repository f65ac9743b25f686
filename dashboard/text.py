"""Strings from an endpoint (model card fields, /health status, error messages) shown as text, never as Markdown.

Streamlit renders st.error, st.caption, st.write and friends as Markdown: a hostile endpoint's "error" could draw a
link ("re-enter your API key here"), load remote images, or colour text. CommonMark lets a backslash escape any ASCII
punctuation, so escaping every one of them leaves exactly the characters that were sent, as plain text.
"""

from __future__ import annotations

import re

# every ASCII punctuation character: Markdown, GFM autolinks (the ':' of 'http://', the '.' of 'www.'), Streamlit's
# :color[...] and :material/...: directives, $ for LaTeX; '<' and '>' so no tag is even attempted
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
MAX_CHARS = 500  # an endpoint's string never fills the page


def plain(value: object, max_chars: int = MAX_CHARS) -> str:
    """`value` as text that Streamlit's Markdown shows verbatim: one line, punctuation escaped, at most max_chars."""
    s = " ".join(str(value).split())  # newlines would start Markdown blocks (headings, lists, tables)
    if len(s) > max_chars:
        s = s[: max_chars - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", s)


# the model's features in words a reader knows (the API's names, e.g. log_return, are for developers)
FEATURE_NAMES = {
    "close": "close",
    "log_return": "daily log return",
    "range_hl": "high-low range",
    "body_oc": "open-to-close move",
    "volume_ratio20": "volume against its 20-day mean",
    "sma10_gap": "gap to the 10-day average",
    "sma50_gap": "gap to the 50-day average",
    "rsi14": "RSI over 14 days",
    "volatility20": "20-day volatility",
    "momentum20": "20-day momentum",
}


def feature_name(name: object) -> str:
    """A feature's plain name when this dashboard knows it, else the endpoint's own (escaped by the caller)."""
    return FEATURE_NAMES.get(str(name), str(name))
