"""Reference-drafted speculative MEMO: the text a window was cut from is a free draft of its answer.

MEMO asks the model to continue every 5-character cut of a text, and the texts it exists to find
are the ones the model reproduces. For those the greedy continuation *is* the rest of the text, so
decoding it token by token (what ``continuous.py`` does) spends one forward per token to learn
what was known in advance. Here:

1. **Draft pass.** Every text ``prompt + label`` (the same string for all windows of a text, in
   both modes) is tokenised once and run through the model once; the argmax at each position is
   the greedy token after that prefix. A window whose prompt ids are a prefix of the text's ids
   accepts the longest run where the greedy token equals the text's next token, at no further cost.
   Windows whose accepted runs end at the same position have the *same* token sequence from there
   on, hence the same greedy future: they share one decode row. A memorized text usually needs no
   row at all (the model says EOS right after the text).
2. **Speculative decoding** for what remains (windows cut mid-word, whose prompt ids are not a
   prefix of the text's, and continuations that left the text): rows run in the continuous-batching
   loop. A mid-word window of a text the draft pass shows the model reproduces is prefilled with
   its label's own tokens appended and verified in that same forward. Each later step feeds a
   row's next token plus a draft (prompt lookup): the text's tokens after the position the row
   re-joined it (matched on its last two tokens), the same from the other texts of its question and
   from finished generations, or the tokens that followed the row's own last bigram earlier (a
   loop). One forward verifies the whole draft; the row keeps the agreeing prefix plus the model's
   own token after it. Rejected draft slots stay in the KV cache but are masked out, and are
   squeezed out when they pile up. How wide a step's drafts are follows a fitted per-step cost:
   on a compute-bound CPU a draft slot costs nearly a decoded token, on a GPU almost nothing.

Exact under greedy: every token a window gets is the argmax of the model's logits for that
window's own prompt ids (unchanged: the same ``encode_prompts`` ids the other engines use) plus
its previous greedy tokens, at the same positions; drafts only decide how many of those argmaxes
one forward computes. As with batching, only floating-point reduction order differs from batch
size 1 (a prefix computed in a longer forward), which can flip a near-tied argmax.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from meow_engine.memo.continuous import (
    _ROOM,
    _cache_kwargs,
    _common_prefix,
    _forward_params,
    _Group,
    _GrowLayer,
    _layers,
    _merge,
    _prefill_shared,
)

#: most draft tokens one verify step feeds per row. Long drafts cost little when a forward is
#: dominated by per-call overhead (small models, GPUs) and are accepted whole on memorized text.
MAX_DRAFT = 32
#: a row's first draft length; it doubles after a draft is accepted whole and shrinks to what was
#: accepted otherwise, so rows that follow their text get long drafts and the others waste few slots
FIRST_DRAFT = 8
#: a verify step feeds ``1 + width`` tokens to every row; until its cost is measured (``StepCost``)
#: the width is the widest whose draft slots are expected to carry at least this share of accepted
#: tokens
MIN_DRAFT_YIELD = 0.25
#: fp32 logits the draft pass and a verify step may hold at once (elements) on a CPU; bounds their
#: memory the way the batch size bounds the KV cache.
LOGIT_BUDGET = 1 << 26
#: on a GPU: this share of its free memory (at least ``LOGIT_BUDGET``), so that large batches can
#: still verify long drafts
GPU_LOGIT_SHARE = 0.05
#: a unigram re-joins the text only within this many tokens after the row's last aligned position
#: (common tokens such as "the" would otherwise propose drafts that fail).
UNIGRAM_REACH = 6
#: finished generations kept per question as drafts for its other rows (the model tends to answer a
#: question the same way from many windows); bounded so lookups stay cheap
MAX_POOL = 64


def logit_budget(device: torch.device) -> int:
    """Elements of fp32 logits one forward may produce (``LOGIT_BUDGET`` / ``GPU_LOGIT_SHARE``)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return max(LOGIT_BUDGET, int(free * GPU_LOGIT_SHARE) // 4)
    return LOGIT_BUDGET


# --------------------------------------------------------------------------------------- drafts


@dataclass
class DraftText:
    """One text's ids with a bigram index (position of the bigram's second token, ascending)."""

    ids: list[int]
    bigrams: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    unigrams: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for j, t in enumerate(self.ids):
            self.unigrams.setdefault(t, []).append(j)
            if j:
                self.bigrams.setdefault((self.ids[j - 1], t), []).append(j)


@dataclass
class _RowDraft:
    """A decode row's drafting state: its token history and where it last agreed with a text."""

    seq: list[int]
    texts: list[DraftText]  # its own text first, then the other texts of the same question (a list
    # shared by the rows of that question, which also collects their finished generations)
    src: DraftText | None = None  # text the newest token is aligned with, at position ``j``
    j: int = -1
    last_j: int = -1  # furthest aligned position in the own text (unigram re-join looks after it)
    seen: dict[tuple[int, int], int] = field(default_factory=dict)  # own bigram -> newest position
    loop_at: int | None = None  # previous occurrence of the newest bigram in ``seq``
    span: int = FIRST_DRAFT  # draft length to propose next
    quality: float = 0.5  # running per-token acceptance of this row's drafts

    def feedback(self, proposed: int, accepted: int) -> None:
        """Adapt the draft length and the acceptance estimate to how this row's drafts have done."""
        if proposed:
            self.span = min(MAX_DRAFT, 2 * self.span) if accepted >= proposed else max(2, accepted + 1)
            per_token = accepted / (accepted + 1) if accepted < proposed else 1.0
            self.quality = 0.5 * self.quality + 0.5 * per_token

    def __post_init__(self) -> None:
        for j in range(1, len(self.seq)):
            self._index(j)

    def _index(self, j: int) -> None:
        key = (self.seq[j - 1], self.seq[j])
        self.loop_at = self.seen.get(key)
        self.seen[key] = j

    def observe(self, tok: int) -> None:
        self.seq.append(tok)
        if len(self.seq) > 1:
            self._index(len(self.seq) - 1)

    def propose(self, limit: int) -> list[int]:
        """Up to ``limit`` tokens the row would produce if it follows a text or repeats itself."""
        limit = min(limit, self.span)
        if limit <= 0:
            return []
        t = self.seq[-1]
        src, j = self.src, self.j
        if src is not None and j + 1 < len(src.ids) and src.ids[j + 1] == t:
            self._align(src, j + 1)
            return src.ids[j + 2: j + 2 + limit]
        self.src = None
        if len(self.seq) > 1:
            key = (self.seq[-2], t)
            for n, text in enumerate(self.texts):
                where = text.bigrams.get(key)
                if not where:
                    continue
                after = [p for p in where if p > self.last_j] if n == 0 else []
                p = after[0] if after else where[0]
                if p + 1 < len(text.ids):
                    self._align(text, p)
                    return text.ids[p + 1: p + 1 + limit]
        own = self.texts[0].ids
        for p in range(self.last_j + 1, min(len(own) - 1, self.last_j + 1 + UNIGRAM_REACH)):
            if own[p] == t:
                self._align(self.texts[0], p)
                return own[p + 1: p + 1 + limit]
        for text in self.texts:  # any occurrence of the newest token, short drafts only
            where = text.unigrams.get(t)
            if where and where[-1] + 1 < len(text.ids):
                self._align(text, where[-1])
                return text.ids[where[-1] + 1: where[-1] + 1 + min(limit, 2)]
        if self.loop_at is not None:  # the row repeats itself: draft the continuation of the loop
            ext = self.seq[self.loop_at + 1:]
            period = len(self.seq) - 1 - self.loop_at
            return [ext[i % period] for i in range(limit)]
        return []

    def _align(self, text: DraftText, p: int) -> None:
        self.src, self.j = text, p
        if text is self.texts[0]:
            self.last_j = max(self.last_j, p)


class _OwnFirst(list):  # type: ignore[type-arg]
    """A row's draft sources: its own text, then its question's shared pool (a live view)."""

    def __init__(self, own: DraftText, pool: list[DraftText]) -> None:
        super().__init__([own])
        self.own, self.pool = own, pool

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield self.own
        yield from (t for t in self.pool if t is not self.own)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self.own if i == 0 else list(self)[i]


# ---------------------------------------------------------------------------------- draft pass


@dataclass
class WindowPlan:
    """What the draft pass decided for one window: tokens already known (``known``), and either
    ``done`` or the decode row (its prompt ids) that produces the rest."""

    known: list[int]
    done: bool
    row: tuple[int, ...] | None = None
    budget: int = 0  # tokens still to generate after ``known``


def draft_pass_argmax(model: Any, texts: Sequence[list[int]], pad_id: int, device: torch.device,
                      batch_size: int) -> list[list[int]]:
    """Greedy next token after every prefix of every text: one causal forward per chunk of texts."""
    out: list[list[int]] = [[] for _ in texts]
    vocab = int(getattr(model.config.get_text_config() if hasattr(model.config, "get_text_config")
                        else model.config, "vocab_size", 32000))
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    budget = logit_budget(device)
    start = 0
    while start < len(order):
        width = len(texts[order[start]])
        rows = max(1, min(batch_size, budget // max(1, width * vocab)))
        idx = order[start: start + rows]
        start += rows
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, width - len(texts[i]):] = torch.tensor(texts[i], dtype=torch.long)
            mask[r, width - len(texts[i]):] = 1
        ids, mask = ids.to(device), mask.to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        am = logits.float().argmax(dim=-1).cpu()  # fp32 argmax, as generate and the decode loop take it
        for r, i in enumerate(idx):
            out[i] = am[r, width - len(texts[i]):].tolist()
    return out


def plan_windows(prompts: Sequence[list[int]], text_of: Sequence[int], texts: Sequence[list[int]],
                 greedy: Sequence[list[int]], max_new_tokens: int, stops: Sequence[int]) -> list[WindowPlan]:
    """Accept each window's draft (the rest of its text) as far as the greedy tokens agree with it.

    ``greedy[t][p]`` is the greedy token after ``texts[t][:p + 1]``. Windows whose prompt ids are not
    a prefix of their text's ids decode from their own prompt (no accepted draft).
    """
    stop_set = set(stops)
    plans: list[WindowPlan] = []
    for ids, t in zip(prompts, text_of, strict=True):
        full, am = texts[t], greedy[t]
        n = len(ids)
        if not am or n > len(full) or full[:n] != ids:
            plans.append(WindowPlan(known=[], done=False, row=tuple(ids), budget=max_new_tokens))
            continue
        known: list[int] = []
        d = n - 1  # the window's sequence is full[:d + 1]; am[d] is its next greedy token
        while (len(known) < max_new_tokens and not (known and known[-1] in stop_set)
               and d + 1 < len(full) and am[d] == full[d + 1]):
            known.append(full[d + 1])
            d += 1
        if len(known) >= max_new_tokens or (known and known[-1] in stop_set):
            plans.append(WindowPlan(known=known, done=True))
            continue
        known.append(am[d])  # the model's own token where it leaves the text (or after its end)
        if am[d] in stop_set or len(known) >= max_new_tokens:
            plans.append(WindowPlan(known=known, done=True))
            continue
        plans.append(WindowPlan(known=known, done=False, row=(*full[: d + 1], am[d]),
                                budget=max_new_tokens - len(known)))
    return plans


# ------------------------------------------------------------------------------ decode loop


def _squeeze(g: _Group) -> None:
    """Drop masked slots (rejected drafts, left padding) from the KV cache: each row's valid slots,
    right-aligned into the narrowest width. Keys keep their rotary positions, so nothing else moves."""
    valid = g.mask.bool()
    width = int(valid.sum(1).max())
    sort = torch.sort(valid.to(torch.int8), dim=1, stable=True)
    cols = sort.indices[:, -width:]
    keep = sort.values[:, -width:].bool()
    for layer in _layers(g.cache):
        kv = []
        for t in (layer.keys, layer.values):
            idx = cols[:, None, :, None].expand(t.shape[0], t.shape[1], width, t.shape[-1])
            kv.append(t.gather(2, idx).masked_fill(~keep[:, None, :, None], 0))
        fresh = _GrowLayer.holding(kv[0], kv[1], room=_ROOM)
        layer._set(fresh._kbuf, fresh._vbuf, width)  # type: ignore[arg-type]
    g.mask = keep.long()


def _expected_accept(q: float, n: int) -> float:
    """Expected accepted tokens of an ``n``-token draft whose tokens each hold with probability q."""
    if n <= 0:
        return 0.0
    return float(n) if q >= 0.999 else q * (1 - q ** n) / (1 - q)


class StepCost:
    """Seconds of one verify forward per row, ``fixed + per_slot * (1 + width)``, fitted online.

    Whether drafting pays depends on the hardware and the model: where a forward's cost is mostly
    fixed per row (per-call overhead, attention over the cache: small models, GPUs) extra draft slots
    are nearly free; where it is compute-bound (a 100M+ model on a CPU) a slot costs about as much as
    a decoded token, so only drafts that are almost surely accepted pay. A decayed least-squares fit
    over the steps so far lets one rule serve both. CPU time is used on CPUs (steadier than wall time
    on a shared machine); on GPUs the step ends in a host copy, so wall time covers the kernels.
    """

    def __init__(self, device: torch.device, decay: float = 0.9) -> None:
        self.clock = time.perf_counter if device.type != "cpu" else time.process_time
        self.decay = decay
        self.n = self.sx = self.sy = self.sxx = self.sxy = 0.0

    def observe(self, width: int, rows: int, seconds: float) -> None:
        x, y, d = 1.0 + width, seconds / max(1, rows), self.decay
        self.n, self.sx, self.sy = d * self.n + 1, d * self.sx + x, d * self.sy + y
        self.sxx, self.sxy = d * self.sxx + x * x, d * self.sxy + x * y

    def fit(self) -> tuple[float, float] | None:
        """(fixed, per-slot) seconds per row, or None before two distinct widths were seen."""
        var = self.n * self.sxx - self.sx * self.sx
        if self.n < 2 or var <= 1e-3 * self.n * self.n:
            return None
        per_slot = max(0.0, (self.n * self.sxy - self.sx * self.sy) / var)
        fixed = max(0.0, (self.sy - per_slot * self.sx) / self.n)
        return fixed, per_slot


def _draft_width(lengths: Sequence[int], quality: Sequence[float], rows: int, vocab: int,
                 cost: StepCost, budget: int = LOGIT_BUDGET) -> int:
    """Draft slots per row for this step: the width (0 or a power of two) with the most expected
    tokens per second.

    Every row gets ``1 + width`` slots (a dense batch), so the choice weighs each row's expected
    accepted draft tokens (its draft length and its recent acceptance rate) against the fitted cost;
    ``lengths`` is -1 for finished rows riding along. Until the cost is fitted, the width follows the
    ``MIN_DRAFT_YIELD`` rule, which also gives the fit different step shapes to learn from.
    """
    cap = min(MAX_DRAFT, max(0, budget // max(1, rows * vocab) - 1), max(lengths, default=0))
    widths = [0]
    while widths[-1] * 2 <= cap:
        widths.append(max(1, widths[-1] * 2))
    gains = [sum(_expected_accept(q, min(n, w)) for n, q in zip(lengths, quality, strict=True)) for w in widths]
    fitted = cost.fit()
    if fitted is None:
        return max(w for w, g in zip(widths, gains, strict=True) if g >= MIN_DRAFT_YIELD * rows * w)
    fixed, per_slot = fitted
    alive = sum(1 for n in lengths if n >= 0)
    rates = [(alive + g) / (fixed + per_slot * (1 + w) + 1e-12) for w, g in zip(widths, gains, strict=True)]
    return widths[rates.index(max(rates))]


def _verify_step(model: Any, g: _Group, drafts: Sequence[list[int]], width: int, pad_id: int) -> list[int]:
    """Feed each row's next token plus up to ``width`` draft tokens; keep the agreeing prefix.

    Returns how many draft tokens each row accepted; ``g.next`` becomes the model's token after them.
    """
    b, cached = g.mask.shape
    device = g.mask.device
    ids = torch.full((b, 1 + width), pad_id, dtype=torch.long)
    lens = torch.zeros(b, dtype=torch.long)
    for r, d in enumerate(drafts):
        d = d[:width]
        if d:
            ids[r, 1: 1 + len(d)] = torch.tensor(d, dtype=torch.long)
            lens[r] = len(d)
    ids, lens = ids.to(device), lens.to(device)
    ids[:, 0] = g.next
    steps = torch.arange(1 + width, device=device)
    # every fed slot is visible while verifying: a row's padding sits after its draft, so the causal
    # mask already hides it from the slots that count; it is masked out below for later steps
    mask = torch.cat([g.mask, g.mask.new_ones((b, 1 + width))], dim=1)
    pos = g.pos[:, None] + 1 + steps[None, :]
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                **_cache_kwargs(model, g.cache, cached, 1 + width, device))
    am = out.logits.float().argmax(dim=-1)  # [b, 1 + width]
    ok = (am[:, :width] == ids[:, 1:]) & (steps[None, :width] < lens[:, None])
    accepted = ok.long().cumprod(dim=1).sum(dim=1) if width else torch.zeros(b, dtype=torch.long, device=device)
    g.mask = torch.cat([g.mask, (steps[None, :] <= accepted[:, None]).long()], dim=1)
    g.pos = g.pos + 1 + accepted
    g.next = am[torch.arange(b, device=device), accepted]
    return accepted.tolist()


def _prefill_drafted(model: Any, prompts: Sequence[list[int]], first: Sequence[list[int]], rows: list[int],
                     keys: Sequence[int], pad_id: int, device: torch.device, keep_logits: bool,
                     vocab: int, budget: int = LOGIT_BUDGET) -> tuple[_Group, list[list[int]], list[int]]:
    """Prefill prompts with a first draft appended and verify it in the same forward.

    Returns the group (rejected draft slots masked out, ``next`` = the model's token after the
    accepted part), each group row's accepted draft tokens, and the group's rows (``rows`` reordered:
    rows are prefilled by draft length, in chunks whose verification logits fit ``budget``).
    """
    groups: list[_Group] = []
    accepted: list[list[int]] = [[] for _ in prompts]
    by_len = sorted(range(len(prompts)), key=lambda i: len(first[i]))  # similar tails together: less padding
    start = 0
    while start < len(by_len):
        n = 1
        while start + n < len(by_len) and (n + 1) * (len(first[by_len[start + n]]) + 1) * vocab <= budget:
            n += 1
        part = by_len[start: start + n]
        start += n
        last = len(first[part[-1]]) + 1
        g = _prefill_shared(model, [prompts[i] + first[i] for i in part], [rows[i] for i in part],
                            [keys[i] for i in part], pad_id, device, keep_logits, last=last,
                            lasts=[len(first[i]) + 1 for i in part])
        if last > 1:
            assert g.tail_argmax is not None
            am = g.tail_argmax.tolist()
            nexts: list[int] = []
            rejected: list[int] = []
            index_of = {rows[i]: i for i in part}
            for r, rid in enumerate(g.rows):
                i = index_of[rid]
                d = first[i]
                off = last - 1 - len(d)  # column whose argmax predicts d[0]
                a = 0
                while a < len(d) and am[r][off + a] == d[a]:
                    a += 1
                nexts.append(am[r][off + a])
                accepted[i] = d[:a]
                rejected.append(len(d) - a)
            # rejected draft tokens are each row's last slots: mask them out, step positions back
            rej = torch.tensor(rejected, dtype=torch.long, device=g.mask.device)
            cols = torch.arange(g.mask.shape[1], device=g.mask.device)
            g.mask = g.mask.masked_fill(cols[None, :] >= g.mask.shape[1] - rej[:, None], 0)
            g.pos = g.pos - rej
            g.next = torch.tensor(nexts, dtype=g.next.dtype, device=g.next.device)
            g.tail_argmax = None
        groups.append(g)
    group = groups[0]
    for g in groups[1:]:
        group = _merge(group, g)
    index_of = {rows[i]: i for i in range(len(rows))}
    return group, [accepted[index_of[rid]] for rid in group.rows], list(group.rows)


def speculative_greedy(
    model: Any,
    prompts: Sequence[list[int]],
    *,
    budgets: Sequence[int],
    drafts: Sequence[_RowDraft],
    stops: Sequence[int],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    on_done: Callable[[int, list[int]], None],
    share_keys: Sequence[int],
    first_drafts: Sequence[list[int] | None] | None = None,
    check_stop: Callable[[], None] = lambda: None,
    refill_below: float = 0.5,
) -> None:
    """``continuous_greedy`` with drafts: greedy-decode each prompt for up to ``budgets[i]`` tokens,
    verifying ``drafts[i]``'s proposals (and ``first_drafts[i]``, if given, in the prefill itself);
    ``on_done(i, ids)`` gets each row's generated ids (ending with its stop token if it emitted one).
    Raises torch.OutOfMemoryError untouched."""
    keep_logits = "logits_to_keep" in _forward_params(model)
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    vocab = int(getattr(cfg, "vocab_size", 32000))
    stop_set = set(stops)
    pending = deque(range(len(prompts)))
    gens: dict[int, list[int]] = {}
    group: _Group | None = None
    cost = StepCost(device)
    budget = logit_budget(device)

    def record(i: int, tok: int) -> bool:
        gens[i].append(tok)
        drafts[i].observe(tok)
        if tok in stop_set or len(gens[i]) >= budgets[i]:
            on_done(i, gens.pop(i))
            return True
        return False

    while pending or group is not None:
        check_stop()
        alive = [] if group is None else [r for r, i in enumerate(group.rows) if i >= 0]
        if pending and len(alive) <= batch_size * refill_below:
            take = [pending.popleft() for _ in range(min(batch_size - len(alive), len(pending)))]
            first = []
            for i in take:
                given = first_drafts[i] if first_drafts is not None else None
                d = list(given) if given is not None else drafts[i].propose(min(budgets[i] - 1, FIRST_DRAFT))
                first.append(d[: max(0, budgets[i] - 1)])
            fresh, took, fresh_rows = _prefill_drafted(model, [prompts[i] for i in take], first, take,
                                                       [share_keys[i] for i in take], pad_id, device, keep_logits,
                                                       vocab, budget)
            first_len = {i: len(d) for i, d in zip(take, first, strict=True)}
            for r, i in enumerate(fresh_rows):
                gens[i] = []
                drafts[i].feedback(first_len[i], len(took[r]))
                for tok in took[r]:
                    if record(i, tok):
                        fresh.rows[r] = -1
                        break
            if group is not None and len(alive) < len(group.rows):
                group.select(alive)
            group = fresh if group is None else _merge(group, fresh)
        assert group is not None
        for r, tok in enumerate(group.next.tolist()):
            i = group.rows[r]
            if i >= 0 and record(i, tok):
                group.rows[r] = -1
        keep = [r for r, i in enumerate(group.rows) if i >= 0]
        if not keep:
            group = None
            continue
        if len(group.rows) - len(keep) > len(group.rows) // 3:
            group.select(keep)
        proposals = [drafts[i].propose(budgets[i] - len(gens[i]) - 1) if i >= 0 else [] for i in group.rows]
        width = _draft_width([len(p) if i >= 0 else -1 for p, i in zip(proposals, group.rows, strict=True)],
                             [drafts[i].quality if i >= 0 else 0.0 for i in group.rows], len(group.rows), vocab,
                             cost, budget)
        t0 = cost.clock()
        accepted = _verify_step(model, group, proposals, width, pad_id)  # ends in a host copy: synchronised
        cost.observe(width, len(group.rows), cost.clock() - t0)
        for r, a in enumerate(accepted):
            i = group.rows[r]
            if i >= 0:
                drafts[i].feedback(min(len(proposals[r]), width), a)
            for tok in proposals[r][:a] if i >= 0 else []:
                if record(i, tok):
                    group.rows[r] = -1
                    break
        cached = group.mask.shape[1]
        if cached > 64 and cached - int(group.mask.sum(1).max()) > cached // 2:
            _squeeze(group)


def encode_plain(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Ids of each string without special tokens: a guess at how the model spells a label that
    starts mid-word (drafts only, so this tokenisation never reaches a prompt)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [enc.ids for enc in backend.encode_batch(list(texts), add_special_tokens=False)]
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False).input_ids]


def predict_speculative(model: Any, tokenizer: Any, prompts: Sequence[list[int]], texts: Sequence[list[int]],
                        text_of: Sequence[int], question_of: Sequence[int], label_ids: Sequence[list[int]], *,
                        max_new_tokens: int, stops: Sequence[int], batch_size: int, device: torch.device,
                        on_done: Callable[[int, list[int]], None],
                        check_stop: Callable[[], None] = lambda: None) -> None:
    """Generated ids of every window (``on_done(i, ids)``, ids as ``continuous_greedy`` gives them).

    ``prompts[i]`` is window i's prompt ids, ``texts[text_of[i]]`` the ids of the text it was cut from
    (``prompt + label``), ``question_of[t]`` groups texts that share a question (their ids are drafts
    for each other: a model that leaves one candidate often continues with another's wording), and
    ``label_ids[i]`` the label's own tokens, the first draft of a window whose prompt ids are not a
    prefix of its text's.
    """
    pad_id = tokenizer.pad_token_id
    used = sorted(set(text_of))
    greedy: list[list[int]] = [[] for _ in texts]
    # every text once: its greedy tokens decide the token-aligned windows, and how much of it the
    # model reproduces predicts whether drafting the other windows from it will pay
    for t, am in zip(used, draft_pass_argmax(model, [texts[t] for t in used], pad_id, device, batch_size),
                     strict=True):
        greedy[t] = am
    agreement = {t: sum(a == b for a, b in zip(greedy[t], texts[t][1:], strict=False)) / max(1, len(texts[t]) - 1)
                 for t in used}
    plans = plan_windows(prompts, text_of, texts, greedy, max_new_tokens, stops)
    rows: dict[tuple[int, ...], int] = {}
    row_prompts: list[list[int]] = []
    row_budget: list[int] = []
    row_text: list[int] = []
    row_first: list[list[int] | None] = []
    members: list[list[int]] = []
    for i, plan in enumerate(plans):
        if plan.done:
            on_done(i, plan.known)
            continue
        assert plan.row is not None
        r = rows.setdefault(plan.row, len(row_prompts))
        if r == len(row_prompts):
            row_prompts.append(list(plan.row))
            row_budget.append(plan.budget)
            row_text.append(text_of[i])
            # a mid-word window of a text the model reproduces likely spells its label as tokenised
            row_first.append(None if plan.known else
                             label_ids[i][: FIRST_DRAFT] if agreement[text_of[i]] >= 0.5 else [])
            members.append([])
        row_budget[r] = max(row_budget[r], plan.budget)
        members[r].append(i)
    if not row_prompts:
        return
    check_stop()
    indexed = {t: DraftText(texts[t]) for t in used}
    by_question: dict[int, list[int]] = {}
    for t in used:
        by_question.setdefault(question_of[t], []).append(t)
    pools = {q: [indexed[o] for o in ts] for q, ts in by_question.items()}
    row_drafts = []
    for p, t in zip(row_prompts, row_text, strict=True):
        pool = pools[question_of[t]]
        # own text first, then the question's pool; the pool list itself is shared, so finished
        # generations appended to it below become drafts for the rows still running
        sources = _OwnFirst(indexed[t], pool)
        state = _RowDraft(seq=list(p), texts=sources, quality=agreement[t])
        state.last_j = _common_prefix(p, texts[t]) - 1
        row_drafts.append(state)
    order = sorted(range(len(row_prompts)), key=lambda r: (row_text[r], -len(row_prompts[r])))

    def finished(j: int, gen: list[int]) -> None:
        r = order[j]
        pool = pools[question_of[row_text[r]]]
        if len(gen) > 2 and len(pool) < MAX_POOL:
            pool.append(DraftText(row_prompts[r][-2:] + gen))
        for i in members[r]:
            plan = plans[i]
            on_done(i, plan.known + gen[: plan.budget])

    speculative_greedy(
        model, [row_prompts[r] for r in order], budgets=[row_budget[r] for r in order],
        drafts=[row_drafts[r] for r in order], stops=stops, pad_id=pad_id, batch_size=batch_size, device=device,
        on_done=finished, share_keys=[row_text[r] for r in order], first_drafts=[row_first[r] for r in order],
        check_stop=check_stop,
    )
