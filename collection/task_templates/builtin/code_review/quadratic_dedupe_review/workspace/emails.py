"""Prepares the mailing list before each newsletter goes out."""


def unique_addresses(addresses):
    """The addresses without duplicates (compared case-insensitively), first seen first."""
    seen = []
    result = []
    for address in addresses:
        key = address.strip().lower()
        if key not in seen:
            seen.append(key)
            result.append(address.strip())
    return result
