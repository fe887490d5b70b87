"""Word wrapping for the plain-text emails."""


def word_wrap(text, width):
    """Lines of at most `width` characters, breaking between words.

    A word longer than `width` gets a line of its own. Whitespace is collapsed.
    """
    lines = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return lines
