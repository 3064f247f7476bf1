"""Lighthouse scores of the signed-in contact list on a phone, against a target of 95.

Starts the real app on demo data, signs in as the demo rep, and runs Lighthouse 12.2.3
(mobile form factor, its default throttling) with Debian's Chromium, passing the session
cookie as an extra header. Lighthouse is installed with npm into a cache directory outside
the repository the first time ($LIGHTHOUSE_DIR, default ~/.cache/fieldcrm-lighthouse).

    .venv/bin/python bench/lighthouse.py [--runs 3] [--path /contacts] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from demo_server import demo_server

VERSION = "12.2.3"
CHROME = "/usr/bin/chromium"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run"
)
CATEGORIES = ("performance", "accessibility", "best-practices")
TARGET = 95


def lighthouse_bin() -> Path:
    """The lighthouse CLI, installed into the cache directory on first use."""
    home = Path(os.environ.get("LIGHTHOUSE_DIR") or Path.home() / ".cache" / "fieldcrm-lighthouse")
    cli = home / "node_modules" / ".bin" / "lighthouse"
    installed = home / "node_modules" / "lighthouse" / "package.json"
    if not cli.exists() or json.loads(installed.read_text())["version"] != VERSION:
        home.mkdir(parents=True, exist_ok=True)
        print(f"Installing lighthouse@{VERSION} into {home}…", file=sys.stderr)
        npm = ["npm", "install", "--prefix", str(home), "--no-audit", "--no-fund", "--silent"]
        subprocess.run([*npm, f"lighthouse@{VERSION}"], check=True)
    return cli


def run(cli: Path, url: str, cookie: str, out: Path) -> dict:
    """One Lighthouse run; return its JSON report."""
    subprocess.run(
        [
            str(cli),
            url,
            "--quiet",
            "--form-factor=mobile",
            f"--only-categories={','.join(CATEGORIES)}",
            f"--chrome-flags={CHROME_FLAGS}",
            "--extra-headers",
            json.dumps({"Cookie": cookie}),
            "--output=json",
            f"--output-path={out}",
        ],
        check=True,
        env={**os.environ, "CHROME_PATH": CHROME},
    )
    return json.loads(out.read_text())


def flagged(report: dict) -> list[str]:
    """The audits that cost points: scored below 1, with the category they count in."""
    lines = []
    for name in CATEGORIES:
        for ref in report["categories"][name]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref["weight"] and audit["score"] is not None and audit["score"] < 1:
                shown = audit.get("displayValue") or ""
                lines.append(f"  {name}: {audit['id']} ({audit['score']:.2f}) {shown}".rstrip())
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1, help="runs; the median is reported")
    parser.add_argument("--path", default="/contacts", help="page to audit, signed in")
    parser.add_argument("--contacts", type=int, default=300, help="demo contacts to seed")
    parser.add_argument("--json", type=Path, help="keep the last report here")
    args = parser.parse_args()
    cli = lighthouse_bin()
    reports = []
    with demo_server(args.contacts) as server, tempfile.TemporaryDirectory() as tmp:
        cookie = server.sign_in("rep")
        for i in range(args.runs):
            reports.append(run(cli, server.url + args.path, cookie, Path(tmp) / f"{i}.json"))
    if args.json:
        args.json.write_text(json.dumps(reports[-1], indent=1))
    version = reports[-1]["lighthouseVersion"]
    agent = reports[-1]["environment"]["hostUserAgent"]
    print(
        f"Lighthouse {version}, mobile form factor with simulated throttling, signed in as the "
        f"demo rep on {args.path} ({args.contacts} demo contacts), {args.runs} run(s), median."
    )
    print(f"Browser: {agent}\n")
    print(f"| {'category':<15} | {'score':>5} | {'runs':<14} | target | result |")
    print(f"|{'-' * 17}|{'-' * 6}:|{'-' * 16}|{'-' * 7}:|{'-' * 8}|")
    failed = False
    for name in CATEGORIES:
        scores = [round(r["categories"][name]["score"] * 100) for r in reports]
        score = statistics.median_low(scores)
        ok = score >= TARGET
        failed |= not ok
        runs, verdict = " ".join(map(str, scores)), "pass" if ok else "FAIL"
        print(f"| {name:<15} | {score:>5} | {runs:<14} | {TARGET:>6} | {verdict:<6} |")
    lines = flagged(reports[-1])
    if lines:
        print("\nAudits that cost points in the last run:")
        print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
