"""Token-level building blocks shared by the method losses (all in fp32, labels masked by -100).

Causal-LM convention: the logit at position t predicts the label at t+1, exactly as Hugging Face
computes ``outputs.loss``; prompt and padding positions carry label -100 and contribute nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from meow_engine.prompts import IGNORE_INDEX


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence *summed* NLL of the answer tokens, and the number of those tokens."""
    nll, mask = token_nll(logits, labels)
    return (nll * mask).sum(-1), mask.sum(-1)


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-mean NLL over the whole batch (HF ``outputs.loss``)."""
    total, count = sequence_nll(logits, labels)
    return total.sum() / count.sum().clamp_min(1)


def kl_reference_to_policy(policy_logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_ref ‖ p_θ) per token, averaged over all B·T positions (padding included, as TOFU)."""
    vocab = policy_logits.size(-1)
    cur = F.log_softmax(policy_logits.float(), dim=-1).view(-1, vocab)
    ref = F.log_softmax(reference_logits.float(), dim=-1).view(-1, vocab)
    return F.kl_div(cur, ref, reduction="batchmean", log_target=True)


def npo_loss(policy_nll: torch.Tensor, reference_nll: torch.Tensor, beta: float) -> torch.Tensor:
    """−(2/β)·log σ(β·(NLL_θ − NLL_ref)), mean over sequences (summed NLLs, as TOFU's NPO)."""
    return -F.logsigmoid(beta * (policy_nll - reference_nll)).mean() * 2 / beta


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position NLL of the shifted labels ``[B, T-1]`` (0 where masked) and the answer mask."""
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    nll = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX, reduction="none",
    ).view(shift_labels.shape)
    return nll, shift_labels != IGNORE_INDEX


def answer_positions(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits that predict answer tokens ``[N, V]`` and those tokens ``[N]`` (shifted, masked)."""
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    keep = shift_labels != IGNORE_INDEX
    return shift_logits[keep], shift_labels[keep]


def dpo_loss(win_policy_nll: torch.Tensor, win_ref_nll: torch.Tensor, lose_policy_nll: torch.Tensor,
             lose_ref_nll: torch.Tensor, beta: float) -> torch.Tensor:
    """−(2/β)·log σ(β·Δ), Δ = [ℓ_θ(win) − ℓ_ref(win)] − [ℓ_θ(lose) − ℓ_ref(lose)] with ℓ = −summed NLL."""
    delta = (win_ref_nll - win_policy_nll) - (lose_ref_nll - lose_policy_nll)
    return -F.logsigmoid(beta * delta).mean() * 2 / beta


def weighted_ascent(logits: torch.Tensor, labels: torch.Tensor, weight: Callable[[torch.Tensor], torch.Tensor]
                    ) -> torch.Tensor:
    """−mean over answer tokens of ``w(p)·NLL_t`` with p = exp(−NLL_t) and w detached (WGA, SatImp)."""
    nll, mask = token_nll(logits, labels)
    w = weight(torch.exp(-nll.detach()))
    return -(w * nll)[mask].mean()
