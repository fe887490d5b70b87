"""Run-length encoding for sensor logs: "aaab" <-> "3a1b"."""


def encode(text):
    """Each run of a repeated character as <count><char>, runs of any length.

    The encoding is canonical: adjacent runs have different characters and every count
    is positive. Text containing digits cannot be encoded (ValueError).
    """
    if any(ch.isdigit() for ch in text):
        raise ValueError("digits cannot be run-length encoded")
    out = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        out.append(f"{j - i}{text[i]}")
        i = j
    return "".join(out)


def decode(encoded):
    """The text that `encode` turned into `encoded`."""
    out = []
    count = ""
    for ch in encoded:
        if ch.isdigit():
            count += ch
        else:
            out.append(ch * int(count))
            count = ""
    return "".join(out)
