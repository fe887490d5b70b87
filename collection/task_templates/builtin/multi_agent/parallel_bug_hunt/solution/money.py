"""Splitting bills between people."""


def split(total_cents, people):
    """Shares of `total_cents` for `people` people: as equal as possible, summing to the
    total, the first people paying the extra cents. `people` must be positive
    (ValueError).
    """
    if people <= 0:
        raise ValueError("people must be positive")
    share, extra = divmod(total_cents, people)
    return [share + 1 if i < extra else share for i in range(people)]
