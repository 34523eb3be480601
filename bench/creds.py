"""`tollgate creds aws` end to end, next to `aws sts assume-role-with-web-identity`.

Starts moto_server on a free loopback port and, in the same run against the same server,
prints the median wall time of N runs of:
  tollgate   `tollgate creds aws --role-arn ... --token-file F --output json` (the whole
             process: start-up, botocore, the STS call, the JSON on stdout)
  awscli     `aws sts assume-role-with-web-identity ... --web-identity-token file://F`
and their ratio. Goal (credentials issue): tollgate <= 0.75x awscli. awscli is only for this
bench (`pip install awscli` into the venv; it is not a dependency); without it the bench
says so and prints tollgate's figures alone.

It also prints tollgate's start-up: `python -X importtime` totals for `creds aws --help`,
`--version`, `redact` and `run`, and whether each imported botocore (only an exchange may).

Usage: python bench/creds.py [--runs 15]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROLE = "arn:aws:iam::123456789012:role/bench"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_moto(port: int) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("moto_server")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("moto_server exited at start")
        try:
            with opener.open(f"http://127.0.0.1:{port}/moto-api/", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("moto_server did not answer within 30 s")


def fake_token() -> str:
    """A JWT-shaped token (moto does not check signatures, oidc-anchors.md §9.5)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "iss": "https://token.actions.githubusercontent.com",
        "aud": "sts.amazonaws.com",
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "exp": int(time.time()) + 3600,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.bm90LWEtc2lnbmF0dXJl"


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(
            f"{argv[0]} failed ({result.returncode}):\n{result.stderr.decode(errors='replace')}"
        )
    json.loads(result.stdout)  # both print one JSON document
    return elapsed


def import_profile(argv: list[str], env: dict[str, str]) -> tuple[float, bool]:
    """Total self import time (ms) of a tollgate command, and whether botocore was loaded."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tollgate", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        check=False,
    )
    total_us = 0
    botocore = False
    for line in result.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.split("|")
        total_us += int(fields[0].split(":")[1])
        botocore = botocore or fields[2].strip().split(".")[0] == "botocore"
    return total_us / 1000, botocore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    tollgate = shutil.which("tollgate", path=str(Path(sys.executable).parent)) or shutil.which(
        "tollgate"
    )
    if tollgate is None:
        sys.exit("tollgate is not installed: pip install -e .")
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")

    workdir = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    token = workdir / "token.jwt"
    token.write_text(fake_token())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "GITHUB_", "GITLAB_", "ACTIONS_", "TOLLGATE_"))
    }
    # An installed tollgate has its bytecode compiled, as awscli and botocore have theirs;
    # without this, every run would recompile tollgate's modules from source.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        AWS_CONFIG_FILE=str(workdir / "absent-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "absent-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    port = free_port()
    moto = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    commands = {
        "tollgate creds aws --output json": [
            tollgate, "creds", "aws", "--platform", "local", "--role-arn", ROLE,
            "--region", REGION, "--token-file", str(token), "--sts-endpoint", endpoint,
            "--output", "json",
        ],
    }  # fmt: skip
    if aws:
        commands["aws sts assume-role-with-web-identity"] = [
            aws, "sts", "assume-role-with-web-identity", "--role-arn", ROLE,
            "--role-session-name", "bench", "--web-identity-token", f"file://{token}",
            "--endpoint-url", endpoint, "--region", REGION, "--output", "json",
        ]  # fmt: skip
    try:
        for argv in commands.values():
            timed(argv, env)  # warm the page cache and moto's first-call set-up
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            for name, argv in commands.items():
                samples[name].append(timed(argv, env))
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"creds bench: median of {args.runs} runs against moto_server, {os.cpu_count()} CPUs")
    medians = {name: statistics.median(times) for name, times in samples.items()}
    for name, median in medians.items():
        print(f"{median * 1000:8.1f} ms  {name}")
    if aws:
        ratio = (
            medians["tollgate creds aws --output json"]
            / medians["aws sts assume-role-with-web-identity"]
        )
        verdict = "met" if ratio <= 0.75 else "NOT met"
        print(f"{ratio:8.2f} x   tollgate / awscli (goal <= 0.75: {verdict})")
    else:
        print("   awscli is not installed: `pip install awscli` into the venv to compare")

    print("start-up (python -X importtime, sum of self times):")
    probes = {
        "tollgate creds aws --help": ["creds", "aws", "--help"],
        "tollgate --version": ["--version"],
        "tollgate redact": ["redact", "--secret-env", "BENCH_SECRET"],
        "tollgate run -- true": ["run", "--secret-env", "BENCH_SECRET", "--", "true"],
    }
    env["BENCH_SECRET"] = "bench-secret-value"
    for name, argv in probes.items():
        total, botocore = import_profile(argv, env)
        print(f"{total:8.1f} ms  {name}  (botocore imported: {'yes' if botocore else 'no'})")


if __name__ == "__main__":
    main()
