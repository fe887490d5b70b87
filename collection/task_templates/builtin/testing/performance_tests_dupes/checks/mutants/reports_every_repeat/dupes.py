"""Finds repeated items in the nightly import."""


def find_duplicates(items):
    """Items that occur more than once, each reported once, in the order of their second
    occurrence. Runs in linear time: the import has millions of (hashable) items.
    """
    seen = set()
    reported = set()
    duplicates = []
    for item in items:
        if item in seen:
            duplicates.append(item)
            reported.add(item)
        seen.add(item)
    return duplicates
