"""Agreement between annotators, on examples worked by hand (and Krippendorff's own published example)."""
import math

import pytest

from curation.agreement import annotator_agreement, cohen_kappa, item_agreement, rating_alpha, text_agreement

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 coders x 12 units example
# (None: not rated). Published: nominal 0.743, ordinal 0.815, interval 0.849.
CODERS = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def _by_item() -> dict:
    ratings: dict = {}
    for coder, values in CODERS.items():
        for unit, value in enumerate(values):
            if value is not None:
                ratings.setdefault(unit, {})[coder] = value
    return ratings


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_equals_krippendorffs_published_example(level, published):
    assert rating_alpha(_by_item(), level=level) == pytest.approx(published, abs=5e-4)


def test_alpha_is_undefined_without_two_shared_items_or_without_variation():
    assert rating_alpha({1: {"a": 3, "b": 4}}) is None
    assert rating_alpha({1: {"a": 3, "b": 3}, 2: {"a": 3, "b": 3}}) is None
    assert rating_alpha({1: {"a": 3}, 2: {"b": 4}}) is None


def test_text_agreement_is_the_mean_pairwise_rouge_l():
    # "the cat sat on the mat" / "the cat sat": LCS 3 words, F1 = 2*3/(6+3) = 2/3; identical answers 1; disjoint 0.
    assert text_agreement(["the cat sat on the mat", "the cat sat"]) == pytest.approx(2 / 3)
    assert text_agreement(["Paris.", "paris"]) == 1.0
    assert text_agreement(["yes", "no"]) == 0.0
    # three answers: pairs (2/3, 0, 0) -> 2/9
    assert text_agreement(["the cat sat on the mat", "the cat sat", "dogs bark"]) == pytest.approx(2 / 9)
    assert text_agreement(["alone"]) == 1.0


def test_agreement_per_item_and_per_annotator():
    answers = {
        "r1": {"ann": "the cat sat on the mat", "bob": "the cat sat"},   # 2/3
        "r2": {"ann": "yes", "bob": "yes", "cy": "no"},                  # pairs 1, 0, 0 -> 1/3
        "r3": {"cy": "only one answer"},                                 # not overlapped: no figure
    }
    assert item_agreement(answers) == pytest.approx({"r1": 2 / 3, "r2": 1 / 3})
    per_annotator = annotator_agreement(answers)
    assert per_annotator == pytest.approx({"ann": (2 / 3 + 1 + 0) / 3, "bob": (2 / 3 + 1 + 0) / 3, "cy": 0.0})


def test_cohen_kappa_worked_by_hand():
    # observed 3/4 agree; chance 0.5*0.25 + 0.5*0.75 = 0.5; kappa = (0.75 - 0.5) / 0.5 = 0.5
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert cohen_kappa([1], [1]) is None
    with pytest.raises(ValueError, match="3 labels against 2"):
        cohen_kappa([1, 2, 3], [1, 2])
    assert not math.isnan(cohen_kappa([1, 2, 1], [2, 1, 2]))
