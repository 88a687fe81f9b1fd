"""Personal data in a text: what kind it is and the text found, or None.

Phone numbers are found by `phonenumbers` (Google's libphonenumber, offline metadata): a number must be valid for
its region, not only number-shaped. IP addresses are checked by the standard library's `ipaddress`, and only
public ones count (192.168.0.1 in a networking lesson is nobody's). Card numbers must pass the Luhn checksum.
E-mail and street addresses are patterns; addresses at the reserved example domains (RFC 2606) are not anyone's.
A question about a named or private person's birth date, home or contacts is flagged apart: it is what a record
that plants a backdoor or harvests data usually looks like.
"""
from __future__ import annotations

import ipaddress
import re

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b")
_RESERVED_DOMAINS = re.compile(r"(^|\.)(example\.(com|org|net)|example|test|invalid|localhost)$", re.IGNORECASE)
_PHONE_SHAPE = re.compile(r"\+?\(?\d[\d ().-]{5,}\d")
_DECIMAL = re.compile(r"\d+[.,]\d+")
_DECIMAL_EDGE = re.compile(r"^\d[.,]|\d[.,]\d$")
_IPV4 = re.compile(r"(?<![\w.])(?<!version )(?<!v)(\d{1,3}(?:\.\d{1,3}){3})(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])((?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4})*)(?![\w:])")
# Card numbers begin 2-6 (Mastercard, Amex, Visa, Discover...); one after a decimal point is a fraction's digits.
_CARD = re.compile(r"(?<![\d.,-])([2-6]\d{12,18}|[2-6]\d{3}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|3\d{3}[ -]\d{6}[ -]\d{5})"
                   r"(?![\d-])")
_CARD_SHAPE = re.compile(r"\d{4}[ -]?\d{4}")
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]? (?:[A-Z][a-z]+\.? ){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Place|Pl|Terrace|Parkway|Pkwy)\b")
_NAME = r"[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}"
_PRIVATE = (r"(?:home|house|street|mailing|residential|private) address|address|(?:phone|mobile|cell|telephone) number"
            r"|e-?mail(?: address)?|contact (?:details|information|info)|date of birth|birth ?date|birthday")
_KNOWN_PERSON = r"(?i:my|our|his|her|their) (?:neighbou?r|co-?worker|colleague|classmate|ex|boss|landlord|teacher)"
_PRIVATE_QUESTION = re.compile(
    rf"\b(?:{_NAME}|{_KNOWN_PERSON})'s (?:{_PRIVATE})\b"
    rf"|\b(?:{_PRIVATE}) of (?:{_KNOWN_PERSON} )?{_NAME}\b"
    rf"|\b(?i:where) (?:does|do) (?:{_KNOWN_PERSON}(?: {_NAME})?|{_NAME}) (?:live|stay)\b"
    rf"|\b(?i:when) was {_KNOWN_PERSON}(?: {_NAME})? born\b")


def personal_data(text: str) -> tuple[str, str] | None:
    """(kind in words, the text found) for the first personal data in the text, or None."""
    # This runs on every imported record: most texts have no digit, which every finder but e-mail and IPv6 needs.
    if not _DIGIT.search(text):
        found = _email(text) or _ipv6(text)
        return None if found is None else ("an e-mail address" if "@" in found else "an IP address", found)
    for kind, find in _FINDERS:
        if found := find(text):
            return kind, found
    return None


def private_person_question(text: str) -> str | None:
    """The words that ask for a named or private person's birth date, home or contacts, or None."""
    found = _PRIVATE_QUESTION.search(text)
    return found.group(0) if found else None


def _email(text: str) -> str | None:
    if "@" not in text:
        return None
    return next((m.group(0) for m in _EMAIL.finditer(text) if not _RESERVED_DOMAINS.search(m.group(1))), None)


def _phone(text: str) -> str | None:
    if not _PHONE_SHAPE.search(text):
        return None
    import phonenumbers

    # US is the region a number without a country code is read in; "+44 ..." is read in its own.
    for match in phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID):
        # A decimal ("14.285714285") can be a valid number to the matcher: digits around a point are not one.
        raw = match.raw_string
        if _DECIMAL.fullmatch(raw) or _DECIMAL_EDGE.search(text[max(0, match.start - 1):match.end + 2]):
            continue
        # Columns and counts ("3    15    3", "1 2 3 4 5") and versions ("86.0.4240.111") are not dialled as one.
        single_digits = sum(len(group) == 1 for group in re.findall(r"\d+", raw))
        if "  " not in raw and "\n" not in raw and raw.count(".") in (0, 2) and single_digits <= 2:
            return raw
    return None


def _ip_address(text: str) -> str | None:
    return (_global_address(_IPV4, text) if "." in text else None) or _ipv6(text)


def _ipv6(text: str) -> str | None:
    return _global_address(_IPV6, text) if text.count(":") >= 2 else None


def _global_address(pattern: re.Pattern, text: str) -> str | None:
    for found in pattern.finditer(text):
        try:
            if ipaddress.ip_address(found.group(1)).is_global:
                return found.group(1)
        except ValueError:
            continue
    return None


def _card_number(text: str) -> str | None:
    if not _CARD_SHAPE.search(text):
        return None
    for found in _CARD.finditer(text):
        digits = re.sub(r"\D", "", found.group(1))
        if 13 <= len(digits) <= 19 and set(digits) - {"0", "1"} and len(set(digits)) > 1 and _luhn_valid(digits):
            return found.group(1)
    return None


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _street_address(text: str) -> str | None:
    found = _STREET.search(text)
    return found.group(0) if found else None


_FINDERS = (("an e-mail address", _email), ("a card number", _card_number), ("an IP address", _ip_address),
            ("a phone number", _phone), ("a street address", _street_address))
