"""Synthetic financial headlines (8-25 words) for benchmarks, tests and the tiny model.

Deterministic for a seed. The sentences read like wire headlines; the companies are
invented.
"""

from __future__ import annotations

import random

COMPANIES = ("Acme Corp", "Globex", "Initech", "Northwind Traders", "Contoso",
             "Vandelay Industries", "Hooli", "Soylent Energy", "Wayne Capital",
             "Cyberdyne Systems", "Tyrell Biotech",
             "Oceanic Airlines", "Pied Piper", "Massive Dynamic", "Blue Harbor Bank",
             "Redwood Mining", "Summit Pharma", "Kestrel Motors", "Ironclad Insurance",
             "Lumen Semiconductors")
SUBJECTS = ("shares", "stock", "profit", "revenue", "quarterly earnings", "sales", "margins",
            "guidance", "outlook", "bonds", "dividend", "orders", "deliveries", "cash flow")
POSITIVE = ("surge", "jump", "rally", "soar", "climb", "beat estimates", "rise sharply",
            "hit a record high", "rebound strongly", "top forecasts", "grow faster than expected",
            "gain after upgrade", "outperform rivals")
NEGATIVE = ("plunge", "tumble", "slump", "fall", "sink", "miss estimates", "drop sharply",
            "hit a record low", "decline after downgrade", "disappoint investors",
            "slide on weak demand", "fall short of forecasts", "crash after profit warning")
NEUTRAL = ("hold steady", "are little changed", "trade flat", "move in line with the market",
           "remain unchanged", "edge sideways")
CAUSES = ("after the company reported third-quarter results",
          "as investors weigh the interest rate outlook",
          "following a management reshuffle at the board level",
          "amid a broader selloff in technology stocks",
          "after regulators approved the merger", "as a lawsuit over patents widens",
          "on strong demand for its new products", "as costs rise across the supply chain",
          "after the chief executive announced a buyback", "amid concerns about debt levels",
          "ahead of the central bank meeting next week",
          "after analysts at a major bank raised their price target",
          "as the probe into accounting practices continues")
TAILS = ("in early trading", "analysts say", "according to people familiar with the matter",
         "in New York on Tuesday", "for a third straight session", "sources said",
         "the company said in a statement", "Reuters reports")
OTHERS = ("{c} to acquire {d} in an all-stock deal valued at billions",
          "{c} names new chief financial officer {tail}",
          "{c} announces layoffs as restructuring plan fails to lift margins",
          "{c} does not expect to cut its dividend this year {tail}",
          "{c} wins regulatory approval for its flagship drug {tail}",
          "{c} faces investigation over alleged fraud in its lending unit",
          "{c} reaffirms full-year guidance despite weak consumer spending",
          "{c} shares unchanged as investors await inflation data {tail}")


def synthetic_headlines(n: int, seed: int = 0) -> list[str]:
    """``n`` headlines of 8-25 words with positive, negative and neutral moves mixed."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        company, other = rng.sample(COMPANIES, 2)
        tail = rng.choice(TAILS)
        if rng.random() < 0.2:
            text = rng.choice(OTHERS).format(c=company, d=other, tail=tail)
        else:
            move = rng.choice(rng.choice((POSITIVE, NEGATIVE, NEUTRAL)))
            text = f"{company} {rng.choice(SUBJECTS)} {move}"
            if rng.random() < 0.8:
                text += f" {rng.choice(CAUSES)}"
            if rng.random() < 0.4:
                text += f" {tail}"
        words = text.split()
        if 8 <= len(words) <= 25:
            out.append(" ".join(words))
    return out


def vocabulary() -> list[str]:
    """Every lower-case word the generator can emit, sorted."""
    parts = [*COMPANIES, *SUBJECTS, *POSITIVE, *NEGATIVE, *NEUTRAL, *CAUSES, *TAILS, *OTHERS]
    words = {w.strip("{}").lower() for p in parts for w in p.replace("-", " ").split()}
    return sorted(w for w in words if w.isalpha())
