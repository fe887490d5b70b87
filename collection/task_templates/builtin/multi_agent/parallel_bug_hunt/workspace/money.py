"""Splitting bills between people."""


def split(total_cents, people):
    """Shares of `total_cents` for `people` people: as equal as possible, summing to the
    total, the first people paying the extra cents. `people` must be positive
    (ValueError).
    """
    share = total_cents // people
    return [share] * people
