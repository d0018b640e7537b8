"""Confidence calibration (temperature scaling) and the refusal threshold. Numpy only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

UNSURE_OUTLIERS = 0.01  # share of held-out non-digits that calibration lets read as "unsure"
# an answer less sure than this is read again in other views of its picture (views.py)
SECOND_LOOK = 0.9


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities over the last axis of logits (..., 10)."""
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def second_look(
    probs: np.ndarray, below: float, views_of: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Probabilities (N, 10) after a second look: an answer at least `below` sure keeps its
    own; one less sure takes the mean of its own and of its picture's other views', which
    `views_of(rows)` gives for those rows (V, len(rows), 10), calibrated alike. Only the
    unsure are looked at again."""
    unsure = np.flatnonzero(probs.max(1) < below)
    if not unsure.size:
        return probs
    seen = views_of(unsure)
    out = probs.copy()
    out[unsure] = (probs[unsure] + seen.sum(0)) / (1 + len(seen))
    return out


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the validation negative log-likelihood
    (a golden-section search over log T; the NLL is unimodal in T)."""
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(60):
        if nll(logits, labels, np.exp(a)) < nll(logits, labels, np.exp(b)):
            hi = b
        else:
            lo = a
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    return float(np.exp((lo + hi) / 2))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    conf = probs.max(1)
    right = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(total)


def refusal_threshold(confidence: np.ndarray, max_refused: float) -> float:
    """The highest confidence threshold that refuses at most `max_refused` of these digits."""
    return float(np.quantile(confidence, max_refused, method="lower"))


def calibration_card(
    logits: np.ndarray,
    labels: np.ndarray,
    outlier_logits: np.ndarray | None,
    max_refused: float,
    pen: tuple[np.ndarray, np.ndarray] | None = None,
    pen_max_refused: float = 0.0,
    views: list[str] | None = None,
    view_logits: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> dict:
    """Temperature, ECE before/after, the refusal rule, and how it does on validation.

    The rule: an answer is refused when its confidence is under `threshold` (the highest
    that refuses at most `max_refused` of the validation digits), or when its two likeliest
    digits are nearly tied (`tie_margin`: the widest gap between them, up to MAX_TIE, that
    refuses at most a third as many again). `pen`: logits and labels of real writers'
    digits no training saw. Then the temperature fits both sets, and the rule also refuses
    at most `pen_max_refused` of the pen digits, so refusals catch the mistakes made on
    people's handwriting, not only on non-digits.

    `views`: names of other views of each picture (reading/views.py), and `view_logits(set,
    rows)` the logits (len(views), len(rows), 10) of those rows of a set ("val", "pen",
    "outliers") in each: the temperature is fitted on the pictures as they are, the rule
    chosen on what a second look at the answers under SECOND_LOOK gives."""

    def calibrated(name: str, z: np.ndarray, t: float) -> np.ndarray:
        p = softmax(z, t)
        if not views:
            return p
        return second_look(p, SECOND_LOOK, lambda rows: softmax(view_logits(name, rows), t))

    both_logits = logits if pen is None else np.concatenate([logits, pen[0]])
    both_labels = labels if pen is None else np.concatenate([labels, pen[1]])
    t = fit_temperature(both_logits, both_labels)
    probs = calibrated("val", logits, t)
    threshold = refusal_threshold(probs.max(1), max_refused)
    if pen is not None:
        pen_probs = calibrated("pen", pen[0], t)
        threshold = min(threshold, refusal_threshold(pen_probs.max(1), pen_max_refused))
    margin = tie_margin(probs, threshold, max_refused / 3)
    if pen is not None:  # ... and with the threshold, at most pen_max_refused of the pen digits
        left = pen_max_refused - float((pen_probs.max(1) < threshold).mean())
        margin = min(margin, tie_margin(pen_probs, threshold, max(0.0, left)))
    card = {
        "temperature": round(t, 4),
        "ece_before": round(expected_calibration_error(softmax(both_logits), both_labels), 5),
        "ece_after": round(expected_calibration_error(softmax(both_logits, t), both_labels), 5),
        "threshold": round(threshold, 6),
        "tie_margin": round(margin, 6),
        "val_refused": round(float(refused_by(probs, threshold, margin).mean()), 5),
    }
    if views:
        card["second_look"] = {"below": SECOND_LOOK, "views": list(views)}
    if pen is not None:
        refused = refused_by(pen_probs, threshold, margin)
        right = pen_probs.argmax(1) == pen[1]
        card["pen_val_accuracy"] = round(float(right.mean()), 5)
        card["pen_val_refused"] = round(float(refused.mean()), 5)
        card["pen_val_answered_right"] = round(float(right[~refused].mean()), 5)
        card["pen_val_errors_refused"] = round(float(refused[~right].mean()), 5)
    if outlier_logits is not None and len(outlier_logits):
        outliers = calibrated("outliers", outlier_logits, t)
        card["val_outliers_refused"] = round(float((outliers.max(1) < threshold).mean()), 5)
        # an answer refused for want of confidence is unsure between two digits when its
        # top two hold more than all but UNSURE_OUTLIERS of these non-digits' do (a model
        # that learned to refuse them spreads its belief over all ten); else it is no digit
        level = float(np.quantile(top_two(outliers), 1 - UNSURE_OUTLIERS))
        card["unsure_top_two"] = round(min(1.0, level + 1e-4), 4)
    return card


MAX_TIE = 0.5  # the tie margin refuses no answer whose top digit leads by more than this


def margins(probs: np.ndarray) -> np.ndarray:
    """How far each answer's likeliest digit leads the next."""
    top = np.sort(probs, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def tie_margin(probs: np.ndarray, threshold: float, share: float) -> float:
    """The widest lead (up to MAX_TIE) under which refusing the answers the threshold keeps
    refuses at most `share` of all of them."""
    kept = margins(probs[probs.max(1) >= threshold])
    allowed = int(share * len(probs))
    if allowed >= len(kept):
        return MAX_TIE
    return float(min(MAX_TIE, np.sort(kept)[allowed]))


def refused_by(probs: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """Which answers the rule refuses: too little confidence, or a near tie."""
    return (probs.max(1) < threshold) | (margins(probs) < margin)


def refusal_reasons(
    probs: np.ndarray, threshold: float, margin: float, unsure_top_two: float
) -> list[str | None]:
    """Why the rule refuses each answer (None: it does not): a near tie, or too little
    confidence with the top two holding `unsure_top_two` or more, is "unsure"; too little
    confidence spread wider is "not_a_digit"."""
    refused = refused_by(probs, threshold, margin)
    unsure = (probs.max(1) >= threshold) | (top_two(probs) >= unsure_top_two)
    return [
        None if not r else "unsure" if u else "not_a_digit"
        for r, u in zip(refused.tolist(), unsure.tolist(), strict=True)
    ]


def top_two(probs: np.ndarray) -> np.ndarray:
    """What the two likeliest digits of each answer hold together."""
    return np.sort(probs, axis=1)[:, -2:].sum(axis=1)
