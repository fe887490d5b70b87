"""URL slugs for blog posts."""

import re
import unicodedata


def slugify(title, max_length=50):
    """Lowercase ASCII words joined by single dashes: "Héllo, World!" -> "hello-world".

    Accents are stripped (é -> e), anything that is not a letter or a digit separates
    words, and the result is cut to at most `max_length` characters without leaving a
    dash at the end.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-zA-Z0-9]+", ascii_title)
    slug = "-".join(words)[:max_length]
    return slug.rstrip("-")
