"""The bundled Debian debtags dataset."""

import pytest

from skxmr.datasets import load_debian_debtags


def test_splits_and_shapes():
    train = load_debian_debtags(subset="train")
    test = load_debian_debtags(subset="test")
    both = load_debian_debtags(subset="all")
    assert len(train.data) == len(train.target) == len(train.ids) == 24317
    assert len(test.data) == 5983
    assert both.data == train.data + test.data
    assert len(train.target_names) == 594
    assert not set(train.ids) & set(test.ids)
    assert all(isinstance(t, str) and t for t in train.data)
    assert all(labels for labels in train.target)  # every package has a tag
    assert "debtags" in train.DESCR


def test_target_names_are_training_labels_most_frequent_first():
    from collections import Counter

    train = load_debian_debtags()
    counts = Counter(tag for tags in train.target for tag in tags)
    assert set(counts) == set(train.target_names)
    freqs = [counts[name] for name in train.target_names]
    assert freqs == sorted(freqs, reverse=True)


def test_known_package():
    train = load_debian_debtags()
    i = train.ids.index("0ad")
    assert train.data[i].startswith("0ad . Real-time strategy game")
    assert "game::strategy" in train.target[i]


def test_return_X_y_and_bad_subset():
    texts, labels = load_debian_debtags(subset="test", return_X_y=True)
    assert isinstance(texts, list) and isinstance(labels[0], tuple)
    with pytest.raises(ValueError, match="subset"):
        load_debian_debtags(subset="validation")
