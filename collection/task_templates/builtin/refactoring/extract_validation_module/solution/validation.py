"""Field validation shared by sign-up and profile updates."""

import re


def validate_username(username):
    """Error messages for a username (empty when it is valid)."""
    if not re.fullmatch(r"[a-z0-9_]{3,20}", username):
        return ["username: 3-20 lowercase letters, digits or _"]
    return []


def validate_contact(email, postcode):
    """Error messages for an email address and a postcode (empty when both are valid)."""
    errors = []
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", email):
        errors.append("email: not an address")
    if not re.fullmatch(r"\d{5}", postcode):
        errors.append("postcode: five digits")
    return errors
