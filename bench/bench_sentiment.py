"""Sentiment benchmark: vaderSentiment 3.3.2 as shipped against social.sentiment.

Measures, in one run on the same machine:

- throughput (texts/s, best of --repeat runs) on the 4,200 tweets of the VADER ground
  truth: the original `polarity_scores`, our linear analyzer's `polarity_scores`, and
  `social.sentiment.score` (language check and bounding included), and whether every
  result of ours equals the original's;
- seconds for one long text (10k and 50k characters of those tweets, 5k emoji): the
  original, our analyzer on the whole text (same numbers, checked), and `score`, which
  scores at most a 5,000-character prefix and then says "truncated"; 200k characters
  and 20k emoji for ours only, since the original needs minutes on them.

    .venv/bin/python bench/bench_sentiment.py            # ~15 s, mostly the original
    .venv/bin/python bench/bench_sentiment.py --no-raw-long   # skip the original on long texts
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from social import sentiment  # noqa: E402

DATA = ROOT / "tests" / "fixtures" / "vader_tweets_ground_truth.txt"


def tweets() -> list[str]:
    """The ground truth's texts (CRLF lines: id, mean, text)."""
    lines = DATA.read_bytes().decode("utf-8").split("\r\n")
    return [line.split("\t", 2)[2] for line in lines if line]


def best_of(repeat: int, work: Callable[[], object]) -> tuple[float, object]:
    """The fastest of repeat runs of work, in seconds, and its last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def long_text(texts: list[str], chars: int) -> str:
    """Tweets joined until chars characters, cut at a space."""
    out: list[str] = []
    size = 0
    for text in texts * (chars // 1000 + 1):
        if size + len(text) + 1 > chars:
            break
        out.append(text)
        size += len(text) + 1
    return " ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-raw-long", action="store_true", help="skip the slow original")
    args = parser.parse_args()

    texts = tweets()
    raw = SentimentIntensityAnalyzer()
    ours = sentiment.analyzer()
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"vaderSentiment 3.3.2, {len(texts):,} tweets, best of {args.repeat}\n"
    )

    t_raw, raw_scores = best_of(args.repeat, lambda: [raw.polarity_scores(t) for t in texts])
    t_ours, our_scores = best_of(args.repeat, lambda: [ours.polarity_scores(t) for t in texts])
    t_score, _ = best_of(args.repeat, lambda: sentiment.score(texts))
    same = sum(a == b for a, b in zip(raw_scores, our_scores, strict=True))
    n = len(texts)
    print("| 4,200 ground-truth tweets | texts/s | vs original | identical |")
    print("|---|---:|---:|---:|")
    print(f"| vaderSentiment polarity_scores | {n / t_raw:,.0f} | 1.00x | baseline |")
    print(f"| ours polarity_scores | {n / t_ours:,.0f} | {t_raw / t_ours:.2f}x | {same:,}/{n:,} |")
    print(f"| ours score() (+ language check) | {n / t_score:,.0f} | {t_raw / t_score:.2f}x | |")
    print()

    cases = [
        ("10k chars of tweets", long_text(texts, 10_000)),
        ("50k chars of tweets", long_text(texts, 50_000)),
        ("5k emoji, no spaces", "😀" * 5_000),
        # The original needs minutes on these (20k emoji: ~280 s); only ours is timed.
        ("200k chars of tweets", long_text(texts, 200_000)),
        ("20k emoji, no spaces", "😀" * 20_000),
    ]
    slow = {"200k chars of tweets", "20k emoji, no spaces"}
    print("| one long text | original s | ours, whole text s | identical | score() s | status |")
    print("|---|---:|---:|---:|---:|---|")
    for name, text in cases:
        print(f"  {name}...", file=sys.stderr)
        t_whole, whole = best_of(1, lambda text=text: ours.polarity_scores(text))
        t_bounded, (result,) = best_of(args.repeat, lambda text=text: sentiment.score([text]))
        if args.no_raw_long or name in slow:
            raw_cell, same_cell = "not run", "not checked"
        else:
            t_orig, expected = best_of(1, lambda text=text: raw.polarity_scores(text))
            raw_cell, same_cell = f"{t_orig:.2f}", "yes" if expected == whole else "NO"
        print(
            f"| {name} | {raw_cell} | {t_whole:.3f} | {same_cell} | {t_bounded:.4f} |"
            f" {result.status} |"
        )


if __name__ == "__main__":
    main()
