"""The suite's metrics on inputs whose answers are known."""

from __future__ import annotations

import pytest
import torch

from algobench.workloads.molecules import mean_average_precision
from algobench.workloads.mri import ssim
from algobench.workloads.speech import BLANK, SPACE, edit_distance, error_rates, greedy_decode
from algobench.workloads.translation import Translation, detokenize


def test_ssim_is_one_for_identical_images_and_lower_for_noisy_ones() -> None:
    y = torch.rand(4, 1, 16, 16)
    assert torch.allclose(ssim(y, y), torch.ones(4), atol=1e-5)
    noisy = ssim(y + 0.3 * torch.randn_like(y), y)
    assert (noisy < 0.9).all()


def test_mean_average_precision_perfect_and_skipping_one_class_tasks() -> None:
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    perfect = targets * 10 - 5
    assert mean_average_precision(perfect, targets) == pytest.approx(1.0)  # tasks 2 and 3 have one class
    reversed_scores = -perfect
    assert mean_average_precision(reversed_scores, targets) == pytest.approx(0.5)


def test_edit_distance_and_ctc_greedy_decoding() -> None:
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([], [4, 5]) == 2
    frames = [1, 1, BLANK, 1, 2, SPACE, 3, 3]
    logits = torch.nn.functional.one_hot(torch.tensor([frames]), SPACE + 1).float()
    assert greedy_decode(logits) == [[1, 1, 2, SPACE, 3]]
    labels = torch.tensor([[1, 1, 2, SPACE, 4, 0]])
    wer, cer = error_rates(logits, labels)
    assert wer == pytest.approx(0.5)  # one of two words wrong
    assert cer == pytest.approx(1 / 5)


def test_bleu_is_100_for_exact_decodes() -> None:
    import sacrebleu

    vocabulary = ["<pad>", "<s>", "</s>", "a", "b", "c", "d"]
    tokens = torch.tensor([[3, 4, 5, 6, 2, 0], [6, 5, 4, 3, 3, 2]])
    lines = detokenize(tokens, vocabulary)
    assert lines == ["a b c d", "d c b a a"]
    assert sacrebleu.corpus_bleu(lines, [lines], tokenize="none").score == pytest.approx(100.0)
    assert Translation.target_metric_name == "bleu"
