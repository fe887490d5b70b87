"""Secret redaction: every export runs its rows through `redact` unless told not to.

    row, counts = redact({"messages": [{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]})
    row["messages"][0]["content"]   # 'key [REDACTED:aws_key]'
    counts                          # Counter({'aws_key': 1})

`redact` walks dicts, lists and strings (dict keys stay as they are) and replaces each secret with
a typed placeholder `[REDACTED:<kind>]`; the counts by kind go into the bundle's manifest.

Where the patterns come from:
- detect-secrets (Yelp's maintained detector): the compiled `denylist` regexes of its plugin
  classes for AWS access key ids and quoted AWS secret keys, GitHub classic tokens, Slack tokens
  and webhooks, Stripe live keys, OpenAI keys (the `T3BlbkFJ` form), JWTs (with its
  `is_formally_valid` check), SendGrid, Twilio, Mailchimp, Discord, PyPI, npm, Square, Azure
  storage, Telegram and GitLab tokens; and its
  `is_templated_secret` / `is_indirect_reference` filters for assignments. We use the regexes
  directly rather than `scan_line`, which builds a result set per line and is far too slow for
  100k examples, and we need the match's position to replace it.
- Our own, for what detect-secrets lacks: Anthropic keys (`sk-ant-...`), OpenAI project /
  service keys without the `T3BlbkFJ` marker (`sk-proj-...`), passwords in URLs (detect-secrets'
  `BasicAuthDetector` skips those with `&`, `!`, `$`..., which URLs allow), GitHub fine-grained
  tokens (`github_pat_...`), Google API keys (`AIza...`), unquoted AWS secret keys in `.env` /
  credentials files, whole PEM private-key blocks (detect-secrets flags only the header line),
  bearer tokens, and `.env`-style or quoted assignments of secret-looking names (its
  KeywordDetector also matches values with spaces and code expressions, which changed too much
  ordinary code when we measured it).

Token matches are extended to the end of the token, so a longer-than-documented key (Stripe's
newer keys, for one) is replaced whole, never left with a readable tail.

Speed: a row is first scanned once as JSON by an RE2 set (google-re2, one linear pass in C++)
holding, per detector, a pattern that matches wherever the detector might match in one of the
row's strings (see "whole rows" below); most rows hold no candidate and are returned as they
are, uncopied. In the rest, a detector's pattern runs only on strings holding one of its
literal triggers (`AKIA`, `sk-`, `PRIVATE KEY`...); strings under 8 characters are skipped.
`bench/redaction.py` measures it against orjson on the same rows.
Measured false positives: 0 of 423 real transcript records, 0 of 885 Django source files, 0.3%
of 8.5k source and doc files of the installed packages (mostly example URLs with passwords).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import re2
from detect_secrets.filters.heuristic import is_indirect_reference, is_templated_secret
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

PLACEHOLDER = "[REDACTED:{kind}]"
_TOKEN_TAIL = r"[A-Za-z0-9_\-]*"
# Secrets never sit inside a longer word: `task-...` is not an OpenAI key.
_START = r"(?<![A-Za-z0-9_\-])"


@dataclass(frozen=True)
class Detector:
    """One kind of secret: `pattern` finds it, `group` is the part replaced (0 = the whole
    match), `check` rejects look-alikes, `triggers` are substrings one of which must occur in the
    text before the (slower) pattern runs — matched against the lower-cased text when `lower`,
    and `gate` a cheap pattern that must match first when there is no literal to look for."""

    kind: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    group: int = 0
    check: Callable[[str], bool] | None = None
    lower: bool = False
    # For kinds without a literal to look for: a cheap pattern that must match first.
    gate: re.Pattern[str] | None = None


def _ds(plugin: Any, index: int = 0, *, tail: bool = True) -> re.Pattern[str]:
    """A detect-secrets plugin's regex, extended to the end of the token when `tail`."""
    pattern: re.Pattern[str] = list(plugin.denylist)[index]
    source = f"{_START}(?:{pattern.pattern}){_TOKEN_TAIL}" if tail else pattern.pattern
    return re.compile(source, pattern.flags)


def _own(source: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(_START + source + _TOKEN_TAIL, flags)


def _random_looking(token: str) -> bool:
    """Real keys are random: digits and both cases. Identifiers and prose words are not."""
    return (
        any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    )


def _has_digit(token: str) -> bool:
    return any(c.isdigit() for c in token)


# Documentation writes `https://user:password@host`; those are examples, not credentials.
_PLACEHOLDER_WORDS = frozenset(
    {"pass", "password", "passwd", "pwd", "secret", "changeme", "xxx", "xxxx", "****", "***"}
)


def _real_password(secret: str) -> bool:
    return secret.lower() not in _PLACEHOLDER_WORDS and not is_templated_secret(secret)


def _jwt(token: str) -> bool:
    return bool(JwtTokenDetector.is_formally_valid(token.rstrip(".")))


# --- assignments of secret-looking names -------------------------------------------------------

_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "credential"}
    | {"credentials", "apikey", "authkey"}
)
# "key" is only a secret after one of these (SECRET_KEY, apiKey, private_key), never alone.
_KEY_QUALIFIERS = frozenset(
    {"api", "auth", "access", "secret", "private", "client", "signing", "encryption", "master"}
)
_VALUE_SUFFIXES = frozenset({"value", "val", "str", "raw", "b64", "hex"})
_NAME_PART = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_PLAIN_VALUES = frozenset({"true", "false", "none", "null", "nil", "undefined", "required"})


def is_secret_name(name: str) -> bool:
    """True for names like API_KEY, db_password, clientSecret, GITHUB_TOKEN; false for
    max_tokens, tokenizer, token_type, password_field_name, SECRET_KEY_PREFIX.

    The secret word must end the name (a `_value`-style suffix aside): a name that goes on
    after it names something about the secret, not the secret itself."""
    parts = [part.lower() for part in _NAME_PART.findall(name)]
    while len(parts) > 1 and parts[-1] in _VALUE_SUFFIXES:
        parts.pop()
    if not parts:
        return False
    last = parts[-1]
    if last in _SECRET_WORDS:
        return True
    return last == "key" and len(parts) > 1 and parts[-2] in _KEY_QUALIFIERS


def looks_secret(value: str) -> bool:
    """A literal that could be a credential: not a number, a word, an identifier, a placeholder
    or code. Random keys mix digits or symbols in; names and identifiers don't."""
    if len(value) < 6 or value.startswith("[REDACTED:") or value.lower() in _PLAIN_VALUES:
        return False
    if is_templated_secret(value) or value[0] in "$%<#" or any(c in value for c in " ()"):
        return False
    if value.replace(".", "").replace("_", "").isdigit() or value[-1] in ",;":
        return False
    if _has_digit(value) and any(c.isalpha() for c in value):
        return True
    if not value.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return True  # symbols beyond identifier punctuation: a password, not a name
    # Letters only: a random key is long and mixes cases without separators.
    return len(value) >= 16 and value.isalpha() and _random_case(value)


def _random_case(value: str) -> bool:
    # More than a couple of case switches inside: "xKqPzR...", not "ChangePasswordForm".
    switches = sum(a.islower() != b.islower() for a, b in zip(value, value[1:], strict=False))
    return switches > len(value) // 4


_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
# NAME=value on its own line (.env, shell `export`, YAML, INI); the value may be unquoted.
_ENV_LINE = re.compile(
    rf"^[ \t]*(?:export[ \t]+)?({_NAME})[ \t]*[=:][ \t]*(['\"]?)([^\s'\"#]+)\2[ \t]*(?:#.*)?$",
    re.MULTILINE,
)
# NAME = "value" / "NAME": "value" anywhere (code, JSON, keyword arguments): quotes required.
_QUOTED = re.compile(rf"(?<![A-Za-z0-9_])({_NAME})['\"]?[ \t]*[:=][ \t]*(['\"])([^'\"\s\\]+)\2")


def _assignment_ok(match: re.Match[str]) -> bool:
    name, value = match.group(1), match.group(3)
    if not (is_secret_name(name) and looks_secret(value)):
        return False
    return not is_indirect_reference(match.group(0))


# A whole PEM block; when the output was cut before the END line, the key lines that made it.
_PEM_BLOCK = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"|(?:[ \t]*\r?\n[ \t]*(?:[A-Za-z0-9+/=]+|[A-Za-z-]+:[^\n]*))*)",
    re.DOTALL,
)
# user:password@ in a URL. detect-secrets' BasicAuthDetector leaves out passwords holding
# RFC 3986 sub-delimiters (`&`, `!`, `$`...), which userinfo allows: our own, wider.
_URL_PASSWORD = re.compile(r"://[^:/?#\[\]@\s]+:([^/?#\[\]@\s]+)@")

# detect-secrets' GitLab patterns' prefixes (a bare "gl" would send most text to them)
_GITLAB_PREFIXES = (
    *("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glcbt-", "glimt-", "glptt-", "glagent-"),
    *("gloas-", "GR1348941"),
)

# --- the detectors, most specific first (a replaced secret is never matched twice) -----------

_ASSIGNMENT_TRIGGERS = ("pass", "pwd", "secret", "token", "key", "credential")

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        _PEM_BLOCK,
        ("PRIVATE KEY",),
    ),
    Detector("anthropic_key", _own(r"sk-ant-[A-Za-z0-9_\-]{20,}"), ("sk-ant-",)),
    Detector("openai_key", _ds(OpenAIDetector), ("T3BlbkFJ",)),
    Detector(
        "openai_key",
        _own(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
        ("sk-",),
        check=_random_looking,
    ),
    Detector("aws_key", _ds(AWSKeyDetector, 0), ("A3T", "ABIA", "ACCA", "AKIA", "ASIA")),
    Detector("aws_secret", _ds(AWSKeyDetector, 1, tail=False), ("aws", "AWS"), group=1),
    Detector(
        "aws_secret",
        re.compile(r"aws_?secret_?(?:access_?)?key[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+]{40})", re.I),
        ("secret",),
        group=1,
        lower=True,
    ),
    Detector("github_token", _ds(GitHubTokenDetector), ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    Detector("github_token", _own(r"github_pat_[A-Za-z0-9_]{40,}"), ("github_pat_",)),
    *(
        Detector("gitlab_token", _ds(GitLabTokenDetector, i), _GITLAB_PREFIXES)
        for i in range(len(GitLabTokenDetector.denylist))
    ),
    Detector("slack_token", _ds(SlackDetector, 0), ("xox", "XOX")),
    Detector("slack_webhook", _ds(SlackDetector, 1), ("hooks.slack.com",)),
    Detector("google_api_key", _own(r"AIza[0-9A-Za-z_\-]{35}"), ("AIza",)),
    Detector("stripe_key", _ds(StripeDetector), ("k_live_",)),
    Detector("sendgrid_key", _ds(SendGridDetector), ("SG.",)),
    Detector("twilio_key", _ds(TwilioKeyDetector, 0), ("AC",), check=_has_digit),
    Detector("twilio_key", _ds(TwilioKeyDetector, 1), ("SK",), check=_has_digit),
    Detector("mailchimp_key", _ds(MailchimpDetector), ("-us",)),
    Detector("pypi_token", _ds(PypiTokenDetector, 0), ("pypi-",)),
    Detector("pypi_token", _ds(PypiTokenDetector, 1), ("pypi-",)),
    Detector("npm_token", _ds(NpmDetector, tail=False), ("_authToken",), group=1),
    Detector("square_secret", _ds(SquareOAuthDetector), ("sq0csp-",)),
    Detector("azure_storage_key", _ds(AzureStorageKeyDetector, tail=False), ("AccountKey=",)),
    Detector(
        "discord_token",
        _ds(DiscordBotTokenDetector),
        (),
        check=_random_looking,
        gate=re.compile(r"\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}"),
    ),
    Detector(
        "telegram_token",
        _ds(TelegramBotTokenDetector),
        (),
        check=_random_looking,
        gate=re.compile(r"\d:[0-9A-Za-z_-]{35}"),
    ),
    Detector("jwt", _ds(JwtTokenDetector), ("eyJ",), check=_jwt),
    Detector(
        "bearer_token",
        re.compile(r"\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)", re.IGNORECASE),
        ("bearer",),
        group=1,
        check=_has_digit,
        lower=True,
    ),
    Detector(
        "url_password",
        _URL_PASSWORD,
        ("://",),
        group=1,
        check=_real_password,
    ),
)

ASSIGNMENT_DETECTORS: tuple[Detector, ...] = (
    Detector("secret_assignment", _ENV_LINE, _ASSIGNMENT_TRIGGERS, group=3, lower=True),
    Detector("secret_assignment", _QUOTED, _ASSIGNMENT_TRIGGERS, group=3, lower=True),
)

KINDS: frozenset[str] = frozenset(d.kind for d in DETECTORS + ASSIGNMENT_DETECTORS)


def _replace_all(detector: Detector, text: str, counts: Counter[str]) -> str:
    check = detector.check
    if detector.pattern is _ENV_LINE or detector.pattern is _QUOTED:
        check = None  # assignments are checked on the whole match below

    def replace(match: re.Match[str]) -> str:
        secret = match.group(detector.group)
        if not secret or secret.startswith("[REDACTED:"):
            return match.group(0)
        if check is not None and not check(secret):
            return match.group(0)
        if detector.kind == "secret_assignment" and not _assignment_ok(match):
            return match.group(0)
        counts[detector.kind] += 1
        start, end = match.span(detector.group)
        whole, offset = match.group(0), match.start()
        placeholder = PLACEHOLDER.format(kind=detector.kind)
        return whole[: start - offset] + placeholder + whole[end - offset :]

    return detector.pattern.sub(replace, text)


ALL_DETECTORS = DETECTORS + ASSIGNMENT_DETECTORS
_CASED = tuple(sorted({t for d in ALL_DETECTORS if not d.lower for t in d.triggers}))
_LOWER = tuple(sorted({t for d in ALL_DETECTORS if d.lower for t in d.triggers}))
# trigger -> the positions in ALL_DETECTORS of the detectors it starts; then the gated ones.
_BY_TRIGGER: dict[str, frozenset[int]] = {
    t: frozenset(i for i, d in enumerate(ALL_DETECTORS) if t in d.triggers) for t in _CASED + _LOWER
}
_GATED = frozenset(i for i, d in enumerate(ALL_DETECTORS) if not d.triggers)

# The assignment detectors replace only values of names holding one of these stems (see
# is_secret_name); their patterns, slow on long code, run only where a stem is followed by
# the rest of such an assignment (looked for in the lower-cased text: a superset).
_SECRET_STEMS = ("pass", "pwd", "secret", "token", "key", "credential")
_ASSIGNMENT_TAILS: dict[re.Pattern[str], re.Pattern[str]] = {
    _ENV_LINE: re.compile(
        r"[a-z0-9_.\-]*[ \t]*[=:][ \t]*(['\"]?)[^\s'\"#]+\1[ \t]*(?:#.*)?$", re.MULTILINE
    ),
    _QUOTED: re.compile(r"[a-z0-9_.\-]*['\"]?[ \t]*[:=][ \t]*(['\"])[^'\"\s\\]+\1"),
}


def _may_assign(text: str, tail: re.Pattern[str]) -> bool:
    lowered = text.lower()
    for stem in _SECRET_STEMS:
        at = lowered.find(stem)
        while at >= 0:
            if tail.match(lowered, at + len(stem)):
                return True
            at = lowered.find(stem, at + 1)
    return False


def redact_text(text: str, counts: Counter[str] | None = None) -> str:
    """`text` with every secret replaced; adds what it replaced to `counts`."""
    counts = Counter() if counts is None else counts
    lowered = text.lower()
    present = {t for t in _CASED if t in text} | {t for t in _LOWER if t in lowered}
    return _redact_present(text, present, True, counts)


def _redact_present(
    text: str,
    present: set[str],
    gated: bool,
    counts: Counter[str],
    allowed: frozenset[int] | None = None,
) -> str:
    """Run the detectors one of whose `present` triggers `text` holds (and, when `gated`,
    those without triggers), in their order; only the `allowed` ones when given."""
    chosen = set(_GATED) if gated else set()
    for trigger in present:
        chosen |= _BY_TRIGGER[trigger]
    if allowed is not None:
        chosen &= allowed
    for index in sorted(chosen):
        detector = ALL_DETECTORS[index]
        if detector.gate is not None and not detector.gate.search(text):
            continue
        tail = _ASSIGNMENT_TAILS.get(detector.pattern)
        if tail is not None and not _may_assign(text, tail):
            continue
        text = _replace_all(detector, text, counts)
    return text


# --- whole rows ------------------------------------------------------------------------------
# A row is first looked at as one JSON document: one RE2 set, a single pass over the row's JSON
# in C++, tells which detectors may match in any of its strings. Most rows: none, and then
# nothing is walked or copied. Each detector's row pattern is a superset, on the JSON text, of
# what it needs in one string: a literal trigger (no trigger holds a character JSON escapes);
# for the kinds without a literal, their pattern loosened to what JSON escaping can't break; for
# the assignments (whose words, `token`, `pass`, `key`, are everywhere in code), the whole
# assignment as it looks once JSON-escaped. Missing a match here would leave a secret in an
# export: `tests/test_redaction.py` checks the plan against the string-by-string detectors on
# planted and generated text.

# Pieces of text as they look in JSON: a space or tab, a quote, a value character of the
# assignment patterns (anything but whitespace, quotes, `#` and backslash; a backslash itself, or
# a control character, escaped), a name's characters, a secret word.
_SP = rb"(?: |\\t)"
_Q = rb"(?:\\\"|')"
_CONTROL = rb"\\\\|\\b|\\u00[0-9a-f]{2}"
_NAME_CHARS = rb"[a-z0-9_.\-]*"
_WORD = rb"(?:pass|pwd|secret|token|key|credential)"
_ASSIGNMENT_ROW = (
    b"(?i)(?:"
    + b"|".join(
        (
            # `NAME = value` alone on its line (_ENV_LINE): after a newline or a string's start
            rb'(?:\\n|")'
            + _SP
            + rb"*(?:export"
            + _SP
            + rb"+)?"
            + _NAME_CHARS
            + _WORD
            + _NAME_CHARS
            + _SP
            + rb"*[=:]"
            + _SP
            + rb"*"
            + _Q
            + rb"?(?:[^\s'\"#\\]|"
            + _CONTROL
            + rb")+"
            + _Q
            + rb"?"
            + _SP
            + rb'*(?:#|\\n|")',
            # `NAME = "value"` anywhere (_QUOTED)
            _WORD
            + _NAME_CHARS
            + _Q
            + rb"?"
            + _SP
            + rb"*[:=]"
            + _SP
            + rb"*"
            + _Q
            + rb"(?:[^\s'\"\\]|"
            + _CONTROL
            + rb")+"
            + _Q,
        )
    )
    + b")"
)
# A dict entry whose key may name a secret (`_secret_entry`; is_secret_name: the secret word,
# then only `_value`-style suffixes and separators) and whose value is a string.
_KEYED_ROW = (
    b"(?i)"
    + _WORD
    + rb'[a-z]{0,6}(?:value|val|str|raw|b64|hex|[^a-z0-9"\\]|\\u[0-9a-f]{4}|\\.)*":"'
)
# The kinds without a usable literal: their patterns as bytes (`\d` is any Unicode digit in a
# str pattern, so any non-ASCII byte here; telegram's without the digit before).
_ROW_GATES = {
    "discord_token": rb"\.[a-zA-Z0-9_\x80-\xff-]{6,24}\.[a-zA-Z0-9_\x80-\xff-]{27}",
    "telegram_token": rb":[0-9A-Za-z_-]{35}",
    "url_password": rb"://[^:/?#\[\]@\s]+:[^/?#\[\]@\s]+@",
}


def _row_pattern(detector: Detector) -> bytes:
    if detector in ASSIGNMENT_DETECTORS:
        return _ASSIGNMENT_ROW
    if detector.kind in _ROW_GATES:
        return _ROW_GATES[detector.kind]
    literals = b"|".join(re2.escape(trigger.encode()) for trigger in detector.triggers)
    return (b"(?i)" if detector.lower else b"") + b"(?:" + literals + b")"


def _row_set() -> Any:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes as they are, whatever they encode
    found = re2.Set.SearchSet(options)
    for detector in ALL_DETECTORS:
        found.Add(_row_pattern(detector))
    found.Add(_KEYED_ROW)
    found.Compile()
    return found


_ROW_SET = _row_set()
_KEYED = len(ALL_DETECTORS)  # the set's last pattern


@dataclass(frozen=True)
class _Plan:
    """What may need replacing in a row: the detectors (positions in ALL_DETECTORS) and
    whether some entry's key may name a secret."""

    detectors: frozenset[int]
    keyed: bool

    def __bool__(self) -> bool:
        return bool(self.detectors) or self.keyed


def _plan(data: bytes) -> _Plan:
    """The row plan for the JSON `data` of a row."""
    # (No str.lower() folding to mind: a character it folds to ASCII, such as the KELVIN SIGN,
    # is in no name the patterns read, and the triggers are only the detectors' prefilters.)
    found = set(_ROW_SET.Match(data) or ())
    return _Plan(frozenset(found - {_KEYED}), _KEYED in found)


class _Scan:
    """Finds the row's strings that change, with the counts, without copying anything."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        chosen = [ALL_DETECTORS[i] for i in plan.detectors]
        self.cased = tuple({t for d in chosen if not d.lower for t in d.triggers})
        self.lower = tuple({t for d in chosen if d.lower for t in d.triggers})
        self.gated = bool(plan.detectors & _GATED)
        self.counts: Counter[str] = Counter()
        self.done: dict[str, tuple[str, Counter[str]]] = {}
        self.keyed = False  # a value replaced because its key names a secret

    def walk(self, value: Any) -> None:
        if isinstance(value, str):
            self.text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str):
                    if self.plan.keyed and _secret_entry(key, item):
                        self.keyed = True
                    else:
                        self.text(item)
                elif isinstance(item, dict | list | tuple):
                    self.walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, str | dict | list | tuple):
                    self.walk(item)

    def text(self, text: str) -> None:
        if len(text) < 8 or not self.plan.detectors:
            return
        if text in self.done:
            self.counts.update(self.done[text][1])
            return
        present = {t for t in self.cased if t in text}
        if self.lower:
            lowered = text.lower()
            present.update(t for t in self.lower if t in lowered)
        if not present and not self.gated:
            return
        found: Counter[str] = Counter()
        clean = _redact_present(text, present, self.gated, found, self.plan.detectors)
        self.done[text] = (clean, found)
        self.counts.update(found)

    def changes(self) -> dict[str, str]:
        return {text: clean for text, (clean, _) in self.done.items() if clean != text}


def _secret_entry(key: Any, item: str) -> bool:
    """{"API_KEY": "..."} (tool inputs, env maps): the key names the secret, the value is it."""
    return isinstance(key, str) and _is_secret_name(key) and looks_secret(item)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    return is_secret_name(name)


def _walk(value: Any, counts: Counter[str], clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {key: _walk_item(key, item, counts, clean) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, counts, clean) for item in value]
    return value


def _walk_item(key: Any, item: Any, counts: Counter[str], clean: Callable[[str], str]) -> Any:
    if isinstance(item, str) and _secret_entry(key, item):
        counts["secret_assignment"] += 1
        return PLACEHOLDER.format(kind="secret_assignment")
    return _walk(item, counts, clean)


def redact(value: Any, data: bytes | None = None) -> tuple[Any, Counter[str]]:
    """`value` (dicts, lists, strings) with secrets replaced, and the counts by kind: a copy
    when anything was, else `value` itself (never changed in place). `data`, when given, is
    `value` as JSON already (the caller's serialisation, saved a second one)."""
    if data is None:
        try:
            data = orjson.dumps(value)
        except TypeError:  # not JSON (keys that aren't strings, huge ints...): string by string
            counts: Counter[str] = Counter()
            return _walk(value, counts, lambda text: _redact_long(text, counts)), counts
    plan = _plan(data)
    if not plan:
        return value, Counter()
    scan = _Scan(plan)
    scan.walk(value)
    changes = scan.changes()
    if not changes and not scan.keyed:
        return value, scan.counts
    clean = _walk(value, scan.counts, lambda text: changes.get(text, text))
    return clean, scan.counts


def _redact_long(text: str, counts: Counter[str]) -> str:
    return redact_text(text, counts) if len(text) >= 8 else text
