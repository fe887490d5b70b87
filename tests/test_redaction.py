"""Secret redaction: every planted kind is found; ordinary code and prose stay as they are."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import orjson
import pytest

from exports.redaction import KINDS, _plan, _walk, redact, redact_text

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "collection" / "task_templates" / "builtin"
TRANSCRIPTS = Path(__file__).resolve().parent / "fixtures" / "transcripts"
# This template plants a hard-coded payments token for the agent to find: a true positive.
PLANTED_TEMPLATE = "security_audit_team"

# (kind, text with one secret, the secret) -- the formats each provider documents.
PLANTED = [
    ("aws_key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_key", "role creds: ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws_secret",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws_secret",
        "client = boto3.client('s3', aws_secret_key='je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY')",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    ),
    (
        "anthropic_key",
        "ANTHROPIC_API_KEY=sk-ant-api03-Xq3vB7nL2pR9sT4wY6zA1cD5fG8hJ0kM-Q2e_3r4t5y6u7i8o9pAA",
        "sk-ant-api03-Xq3vB7nL2pR9sT4wY6zA1cD5fG8hJ0kM-Q2e_3r4t5y6u7i8o9pAA",
    ),
    (
        "openai_key",
        'client = OpenAI(api_key="sk-proj-7fK2mQ9xL4vN8bR1tY6wZ3cH5jP0sD2gA9eU4iO7kT1nB6vX")',
        "sk-proj-7fK2mQ9xL4vN8bR1tY6wZ3cH5jP0sD2gA9eU4iO7kT1nB6vX",
    ),
    (
        "openai_key",
        "OPENAI_API_KEY: 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",
        "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",
    ),
    (
        "github_token",
        "git clone https://ghp_R2d2C3p0Xw1ngF1ght3rT1eF1ght3rYw1ng42@github.com/o/r",
        "ghp_R2d2C3p0Xw1ngF1ght3rT1eF1ght3rYw1ng42",
    ),
    (
        "github_token",
        "GH_TOKEN=github_pat_11AB2CD3E0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVw",
        "github_pat_11AB2CD3E0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVw",
    ),
    (
        "slack_token",
        "SLACK_BOT=xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1",
        "xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1",
    ),
    (
        "slack_webhook",
        "post to https://hooks.slack.com/services/T024BE7LD/B01H1EXAMPLE/aBcDeFgHiJkLmNoPqRsTuVwX",
        "https://hooks.slack.com/services/T024BE7LD/B01H1EXAMPLE/aBcDeFgHiJkLmNoPqRsTuVwX",
    ),
    (
        "google_api_key",
        "maps.googleapis.com/maps/api/geocode/json?key=AIzaSyD3x4mpl3K3y_-AbCdEfGhIjKlMnOpQrSt",
        "AIzaSyD3x4mpl3K3y_-AbCdEfGhIjKlMnOpQrSt",
    ),
    (
        "stripe_key",
        "stripe.api_key = 'sk_live_51H8aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789AbCdEfGhIjKlMnOp'",
        "sk_live_51H8aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789AbCdEfGhIjKlMnOp",
    ),
    (
        "stripe_key",
        "restricted: rk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    (
        "private_key",
        "id_rsa:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c3ZXhhbXBsZQ\n"
        "bm90IGEgcmVhbCBrZXk=\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c3ZXhhbXBsZQ\n"
        "bm90IGEgcmVhbCBrZXk=\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "private_key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n\n(output cut)",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
    ),
    (
        "jwt",
        "session=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c; path=/",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    (
        "bearer_token",
        'curl -H "Authorization: Bearer 7d3f9a2b4c1e8f6a0b5d2c9e4f7a1b3c" https://api.example.com',
        "7d3f9a2b4c1e8f6a0b5d2c9e4f7a1b3c",
    ),
    (
        "url_password",
        "DATABASE_URL=postgres://app:Tr0ub4dor&3@db.internal:5432/app",
        "Tr0ub4dor&3",
    ),
    ("secret_assignment", "DB_PASSWORD=hunter2\nDEBUG=true", "hunter2"),
    ("secret_assignment", "export SECRET_KEY='9f8e7d6c5b4a39281706'", "9f8e7d6c5b4a39281706"),
    ("secret_assignment", 'config = {"client_secret": "Xk9#mP2$vL"}', "Xk9#mP2$vL"),
    ("secret_assignment", "smtp:\n  password: p4ssw0rd!\n  port: 587", "p4ssw0rd!"),
    (
        "sendgrid_key",
        "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",
        "SG.",
    ),
    ("twilio_key", "sid AC1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "AC1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"),
    (
        "mailchimp_key",
        "mc 0123456789abcdef0123456789abcdef-us12",
        "0123456789abcdef0123456789abcdef",
    ),
    (
        "npm_token",
        "//registry.npmjs.org/:_authToken=npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    ),
    (
        "pypi_token",
        "password = pypi-AgEIcHlwaS5vcmcCJGE4YjM4ZDgyLTg1ZjEtNGMxOS1iYWI0LWM1ZTU2ZjNiMzY5ZQACKlsz"
        "eyJwZXJtaXNzaW9ucyI6ICJ1c2VyIiwgInZlcnNpb24iOiAxfQAABiA",
        "pypi-AgEIcHlwaS5vcmcCJGE4YjM4ZDgyLTg1ZjEtNGMxOS1iYWI0LWM1ZTU2ZjNiMzY5ZQACKlsz",
    ),
    (
        "gitlab_token",
        "CI_TOKEN glpat-xZ3vQ8nR2mK7pL4wT9yB",
        "glpat-xZ3vQ8nR2mK7pL4wT9yB",
    ),
]


@pytest.mark.parametrize(("kind", "text", "secret"), PLANTED, ids=[p[0] for p in PLANTED])
def test_every_planted_kind_is_found_and_replaced_whole(kind: str, text: str, secret: str) -> None:
    counts: Counter[str] = Counter()

    clean = redact_text(text, counts)

    assert f"[REDACTED:{kind}]" in clean
    assert secret not in clean
    assert counts[kind] >= 1


def test_the_planted_corpus_covers_every_kind_we_detect() -> None:
    missing = KINDS - {kind for kind, _, _ in PLANTED}
    assert missing == {"discord_token", "telegram_token", "square_secret", "azure_storage_key"}


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (
            "discord_token",
            "bot.run('MTE0NTY3ODkwMTIzNDU2Nzg5MA.GhIjKl.aBcDeFgHiJkLmNoPqRsTuVwXy1234567')",
        ),
        ("telegram_token", "TELEGRAM=123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"),
        ("square_secret", "sq0csp-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"),
        (
            "azure_storage_key",
            "AccountKey=aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5zA7bC9dE1fG3hI5jK7lM9n"
            "O1pQ3rS5tU7vW9xY1zA3bC5dE7fG9h==",
        ),
    ],
)
def test_the_other_detect_secrets_kinds_are_found(kind: str, text: str) -> None:
    counts: Counter[str] = Counter()
    assert f"[REDACTED:{kind}]" in redact_text(text, counts)
    assert counts[kind] == 1


def test_the_rest_of_the_text_is_kept() -> None:
    text = "Connect with postgres://app:Tr0ub4dor&3@db.internal:5432/app then run migrations."

    assert redact_text(text) == (
        "Connect with postgres://app:[REDACTED:url_password]@db.internal:5432/app"
        " then run migrations."
    )


def test_redact_walks_nested_rows_and_leaves_keys_alone() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "deploy with AKIAIOSFODNN7EXAMPLE"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "function": {
                            "arguments": {
                                "env": {
                                    "API_KEY": "k3y-v4lu3-0123",
                                    "AKIAIOSFODNN7EXAMPLE": "key as a key",
                                }
                            }
                        }
                    }
                ],
            },
        ],
        "weight": 1,
        "flags": [True, None, 2.5],
    }

    clean, counts = redact(row)

    assert clean["messages"][0]["content"] == "deploy with [REDACTED:aws_key]"
    env = clean["messages"][1]["tool_calls"][0]["function"]["arguments"]["env"]
    assert env == {
        "API_KEY": "[REDACTED:secret_assignment]",
        "AKIAIOSFODNN7EXAMPLE": "key as a key",
    }
    assert clean["weight"] == 1 and clean["flags"] == [True, None, 2.5]
    assert counts == Counter({"aws_key": 1, "secret_assignment": 1})
    assert row["messages"][0]["content"] == "deploy with AKIAIOSFODNN7EXAMPLE"  # a copy


def test_redacting_twice_finds_nothing_more() -> None:
    text = "\n".join(text for _, text, _ in PLANTED)
    once, first = redact(text)
    twice, second = redact(once)

    assert twice == once
    assert sum(first.values()) >= len(PLANTED)
    assert second == Counter()


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens = 32768\nTOKEN_TYPE=bearer",
        'tokenizer = "bert-base-uncased"',
        "SECRET_KEY = os.environ['SECRET_KEY']",
        "password = request.POST.get('password')",
        'client.login(username="admin", password="password")',
        "token_generator = default_token_generator",
        "Use `Authorization: Bearer <token>` with the token from the settings page.",
        "See https://user:password@example.com in the docs; postgres://postgres@127.0.0.1:5432/x",
        "The task-management service: sk-learn and scikit-learn are the same package.",
        "ACCESS_KEY: ${{ secrets.ACCESS_KEY }}\nPASSWORD=$DB_PASSWORD",
        "color: #cccccc; Token: '#f8f8f2'",
        "commit 3f9a2b4c1e8f6a0b5d2c9e4f7a1b3c5d7e9f1a2b (HEAD -> main)",
        "uuid 123e4567-e89b-12d3-a456-426614174000 and sha256:9f86d081884c7d659a2feaa0c55ad015",
    ],
)
def test_ordinary_code_and_prose_is_left_alone(text: str) -> None:
    clean, counts = redact(text)
    assert clean == text
    assert counts == Counter()


# --- measured on real text: under 1% of records change --------------------------------------


def _records(path: Path) -> Iterator[Any]:
    """One record per transcript line (JSONL) or per file (code, prose, JSON documents)."""
    text = path.read_text("utf-8", errors="replace")
    if path.suffix in (".jsonl", ".ndjson"):
        yield from (json.loads(line) for line in text.splitlines() if line.strip())
    elif path.suffix in (".json", ".traj"):
        yield json.loads(text)
    else:
        yield text


def _changed_share(paths: list[Path]) -> tuple[float, int]:
    records = [record for path in paths for record in _records(path)]
    changed = sum(1 for record in records if redact(record)[1])
    return changed / len(records), len(records)


def test_real_transcripts_are_left_alone() -> None:
    share, records = _changed_share([p for p in sorted(TRANSCRIPTS.iterdir()) if p.suffix != ".md"])
    assert records > 200
    assert share == 0


def test_template_workspaces_change_under_one_percent() -> None:
    files = [
        p for p in sorted(TEMPLATES.rglob("*")) if p.is_file() and PLANTED_TEMPLATE not in p.parts
    ]
    share, records = _changed_share(files)
    assert records > 150
    assert share < 0.01


def test_the_security_audit_templates_planted_token_is_found() -> None:
    app = TEMPLATES / "multi_agent" / PLANTED_TEMPLATE / "workspace" / "app.py"
    clean, counts = redact(app.read_text())
    assert "sk-live-51HxQv2eZvKYlo2C0aIiKJ" not in clean
    assert sum(counts.values()) == 1


def test_djangos_own_source_changes_under_one_percent() -> None:
    files = sorted(Path(django.__path__[0]).rglob("*.py"))
    share, records = _changed_share(files)
    assert records > 800
    assert share < 0.01


# --- the row plan never misses what the string-by-string detectors replace ------------------


def _string_by_string(value: Any) -> tuple[Any, Counter[str]]:
    """What `redact` gives without its row plan: every string through every detector."""
    counts: Counter[str] = Counter()
    return _walk(value, counts, lambda text: redact_text(text, counts)), counts


def _rows_holding(text: str) -> Iterator[Any]:
    """`text` everywhere a row holds text: a message, a tool call's arguments as a JSON string
    (escaped twice in the row's JSON), a list, and as an entry's key and value."""
    yield {"messages": [{"role": "user", "content": text}]}
    yield {"tool_calls": [{"function": {"arguments": json.dumps({"command": text})}}]}
    yield [text, {"nested": [text]}]
    for name in text.split("=", 1)[:1]:
        yield {"input": {name.strip(): text.rsplit("=", 1)[-1].strip()}}


def _assignment_texts(rng: random.Random, count: int) -> Iterator[str]:
    """Assignments of secret-looking names in every shape the assignment detectors read, with
    what JSON escapes: quotes, tabs, backslashes, control characters, non-ASCII."""
    names = ["API_KEY", "db_password", "clientSecret", "GITHUB_TOKEN", "apiKeyValue", "pwd",
             "x-auth-token", "Credentials", "AUTHKEY", "my.secret_raw", "token", "passwd",
             "SECRET_KEY_PREFIX", "tokenizer", "max_tokens", "Passphrase"]  # fmt: skip
    values = ["s3cr3t-Value_42", "hunter2!x", "Zq8\\x9LmN0p", "aB3dE5fG7hI9jK1lM3nO",
              "p\x01ss\x08w0rd9", "mötörhead77", "k\u212aey12345", "ab\x1fcd123",
              "Kelvin\u212aToken9", "plain"]  # fmt: skip
    separators = ["=", ": ", " = ", "\t=\t", ":", "='", '="', " := "]
    before = ["", "\n", "  ", "export ", "\t", "text before ", "x\n  ", '{"', "'"]
    after = ["", "\n", " # note", "\r\n", " and more", "'", '"', '",', "\t\n"]
    for _ in range(count):
        sep = rng.choice(separators)
        quote = sep[-1] if sep[-1] in "'\"" else rng.choice(["", "", "'", '"'])
        value = rng.choice(values)
        yield (
            rng.choice(before) + rng.choice(names) + rng.choice(["", "'", '"']) + sep.rstrip("'\"")
            + quote + value + quote + rng.choice(after)
        )  # fmt: skip


def test_the_row_plan_misses_nothing_the_detectors_replace() -> None:
    rng = random.Random(7)
    texts = [text for _, text, _ in PLANTED] + list(_assignment_texts(rng, 3000))
    texts += [
        "bot.run('MTE0NTY3ODkwMTIzNDU2Nzg5MA.GhIjKl.aBcDeFgHiJkLmNoPqRsTuVwXy1234567')",
        "TELEGRAM=123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
        'see https://user:p\u00e4ss"w0rd@host/x and ftp://a:b\\c@d',
        "Authorization: BEARER abcdefghijklmnop0123456789",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ]
    changed = 0
    for text in texts:
        for row in _rows_holding(text):
            expected = _string_by_string(row)
            assert redact(row) == expected, text
            changed += bool(expected[1])
    assert changed > 1000  # the corpus does hold secrets for the plan to find


def test_the_row_plan_skips_rows_without_secrets() -> None:
    """Ordinary rows (real transcripts) are not walked: the plan finds nothing in them."""
    rows = [r for p in sorted(TRANSCRIPTS.glob("*.jsonl")) for r in _records(p)]
    planned = [row for row in rows if _plan(orjson.dumps(row))]
    assert len(rows) > 200
    assert len(planned) < len(rows) * 0.2
