"""unverified-script: the shell lexer, what counts as running a download, and locations."""

from __future__ import annotations

import pytest

from tollgate.audit.findings import Confidence, Severity
from tollgate.audit.github.model import Workflow, load_workflow
from tollgate.audit.github.rules.scripts import UnverifiedScript, find_unverified, split_commands
from tollgate.audit.rules import AuditContext


def test_split_commands_words_and_separators() -> None:
    script = 'echo a#b # note\ncurl -o \'x y\' "a\\"b" 2>&1 | sh\nfoo \\\n  bar && baz'
    commands = split_commands(script)
    assert [([w.text for w in c.words], c.sep) for c in commands] == [
        (["echo", "a#b"], "\n"),
        (["curl", "-o", "x y", 'a"b', "2>&1"], "|"),
        (["sh"], "\n"),
        (["foo", "bar"], "&&"),
        (["baz"], ""),
    ]
    curl = commands[1].words[0]
    assert script[curl.start : curl.end] == "curl"


def test_split_commands_range_keeps_offsets() -> None:
    script = "echo one\ncurl https://x | sh\n"
    first, last = split_commands(script, 9, 28)
    assert first.sep == "|"
    assert script[first.words[0].start : last.words[-1].end] == "curl https://x | sh"


@pytest.mark.parametrize(
    ("script", "kind", "verified"),
    [
        ("curl -fsSL https://get.example.dev | sh", "pipe", False),
        ("curl -fsSL https://get.example.dev | sudo -E bash -", "pipe", False),
        ("wget -qO- https://get.example.dev | bash -s -- --yes", "pipe", False),
        ("curl -sSL https://get.example.dev/x.py | python3 -", "pipe", False),
        ("curl https://get.example.dev | tee /tmp/log | sh", "pipe", False),
        ("curl https://get.example.dev \\\n  | bash", "pipe", False),
        ("bash <(curl -s https://get.example.dev)", "pipe", False),
        ('sh -c "$(curl -fsSL https://get.example.dev)"', "pipe", False),
        ('eval "$(wget -qO- https://get.example.dev)"', "pipe", False),
        ("sudo sh -c 'curl -fsSL https://get.example.dev | bash'", "pipe", False),
        ("iwr https://get.example.dev/i.ps1 -useb | iex", "pipe", False),
        (
            "iex ((New-Object Net.WebClient).DownloadString('https://get.example.dev'))",
            "pipe",
            False,
        ),
        ("Invoke-Expression (Invoke-WebRequest https://get.example.dev/i.ps1)", "pipe", False),
        ("curl -o i.sh https://get.example.dev/i.sh\nbash i.sh", "file", False),
        ("curl -fsSLo i.sh https://get.example.dev/i.sh && sh ./i.sh", "file", False),
        ("curl -LO https://get.example.dev/tool && chmod +x tool && ./tool", "file", False),
        ("wget https://get.example.dev/i.sh\nsh i.sh", "file", False),
        ("wget -O /tmp/t https://get.example.dev/t\n/tmp/t serve &", "file", False),
        (
            "Invoke-WebRequest https://get.example.dev/i.ps1 -OutFile i.ps1\n& ./i.ps1",
            "file",
            False,
        ),
        (
            "curl -o i.sh https://get.example.dev/i.sh\necho 'ab  i.sh' | sha256sum -c\nsh i.sh",
            "file",
            True,
        ),
        (
            "curl -o i.sh https://get.example.dev/i.sh\ngpg --verify i.sh.asc i.sh\nsh i.sh",
            "file",
            True,
        ),
    ],
)
def test_found(script: str, kind: str, verified: bool) -> None:
    [hit] = find_unverified(script)
    assert (hit.kind, hit.verified) == (kind, verified)
    assert hit.url.startswith("https://get.example.dev")
    assert script[hit.start :].startswith(
        ("curl", "wget", "iwr", "iex", "Invoke", "bash", "sh", "eval", "sudo")
    )


@pytest.mark.parametrize(
    "script",
    [
        "curl -s https://api.example.dev/latest | jq -r .tag",
        "curl -s https://api.example.dev/x | python3 -c 'import json,sys; json.load(sys.stdin)'",
        "curl -s https://api.example.dev/x | python3 -m json.tool",
        "curl -s https://api.example.dev/x | python3 check.py",
        "curl -fsSL https://example.dev/key | sudo gpg --dearmor -o /etc/apt/keyrings/k.gpg",
        "wget -O - https://example.dev/key | sudo apt-key add -",
        "curl -L https://example.dev/t.tar.gz | tar xz",
        "# curl https://example.dev | sh",
        'echo "curl https://example.dev | sh"',
        "sudo apt-get install -y curl libcurl4-openssl-dev",
        'V="$(curl -s https://api.example.dev/version)"',
        "curl -o t.tar.gz https://example.dev/t.tar.gz && tar xzf t.tar.gz",
        "curl -o out.json https://example.dev/x\ncat out.json",
        "./install.sh",
        "(& ./uv generate-shell-completion powershell) | Out-String | Invoke-Expression",
    ],
)
def test_not_found(script: str) -> None:
    assert find_unverified(script) == []


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", text)
    assert isinstance(result, Workflow), result
    return result


def test_grading_and_location_in_a_block() -> None:
    sha = "9f2c1b7e4d3a5f6e8b0c1d2e3f4a5b6c7d8e9f01"
    wf = workflow(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n"
        "          set -e\n"
        "          curl -fsSL https://get.example.dev | sh\n"
        "          wget -qO- http://get.example.dev/x | sh\n"
        f"          curl -fsSL https://raw.githubusercontent.com/o/r/{sha}/i.sh | sh\n"
    )
    found = list(UnverifiedScript().check_workflow(wf, AuditContext()))
    assert [(f.location.line, f.location.column, f.severity) for f in found] == [
        (8, 11, Severity.MEDIUM),
        (9, 11, Severity.HIGH),
        (10, 11, Severity.LOW),
    ]
    assert {f.anchor for f in found} == {"jobs.j.steps[0].run"}
    assert all(f.confidence is Confidence.HIGH for f in found)
    assert found[0].location.end_line == 8 and found[0].location.end_column == 50
