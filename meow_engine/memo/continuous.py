"""Greedy decoding with continuous batching: finished rows leave the batch, new windows join it.

``generate`` runs a batch until its *longest* row ends. MEMO windows are ragged: a memorized
continuation stops at EOS after a few tokens while a window cut mid-word may loop to
``max_new_tokens``, so most of a ``generate`` batch's compute goes to rows that are already done.
This loop drops a row the step it emits a stop token and tops the batch up with fresh windows
once it is half empty, so compute follows the tokens actually generated.

Exactness: each row is decoded exactly as ``generate`` would at batch size 1 — its own prompt ids,
its own positions (counted over its real tokens), an attention mask that hides every padded slot,
argmax of fp32 logits. Joining a new group left-pads the shorter KV cache with masked zeros, which
changes no unmasked attention term. As with any batching only the floating-point reduction order
differs from batch size 1.

Only for models that fill the ``DynamicCache`` they are given, one full-attention layer after another
(Llama, Phi, Qwen, SmolLM, GPT-NeoX ...); ``supports_continuous`` says when to fall back to ``generate``.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

#: free slots a KV buffer keeps after its filled part. Growing copies the cache once per _ROOM steps,
#: compaction and merging copy the room too, so it stays small.
_ROOM = 16


class _GrowLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys/values live in a buffer with spare room, so appending a token is
    a slice write instead of ``torch.cat`` copying the whole cache every step (which dominated
    decode time on CPU). ``keys``/``values`` stay views of the filled part, as the model expects."""

    _kbuf: torch.Tensor | None = None
    _vbuf: torch.Tensor | None = None
    _n: int = 0

    def _set(self, kbuf: torch.Tensor, vbuf: torch.Tensor, n: int) -> None:
        self._kbuf, self._vbuf, self._n = kbuf, vbuf, n
        self.keys, self.values = kbuf[..., :n, :], vbuf[..., :n, :]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        need = self._n + key_states.shape[-2]
        if self._kbuf is None or need > self._kbuf.shape[-2]:
            cap = need + _ROOM  # slots past the filled part are never read: no zeroing
            kbuf = key_states.new_empty((*key_states.shape[:-2], cap, key_states.shape[-1]))
            vbuf = value_states.new_empty((*value_states.shape[:-2], cap, value_states.shape[-1]))
            if self._n:
                kbuf[..., : self._n, :] = self.keys
                vbuf[..., : self._n, :] = self.values
            self._kbuf, self._vbuf = kbuf, vbuf
        assert self._kbuf is not None and self._vbuf is not None
        self._kbuf[..., self._n: need, :] = key_states
        self._vbuf[..., self._n: need, :] = value_states
        self._set(self._kbuf, self._vbuf, need)
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._kbuf is not None:
            # copy only the filled part (and the room of the next steps), not stale spare slots
            n = self._n
            self._set(self._kbuf[indices, ..., : n + _ROOM, :], self._vbuf[indices, ..., : n + _ROOM, :], n)  # type: ignore[index]

    def merged_with(self, other: _GrowLayer, width: int) -> None:
        """Stack ``other``'s rows under ours, both right-aligned to ``width`` (left slots zero)."""
        a, b = self.keys, other.keys
        cap = width + _ROOM
        kbuf = a.new_empty((a.shape[0] + b.shape[0], *a.shape[1:-2], cap, a.shape[-1]))
        vbuf = torch.empty_like(kbuf)
        for buf, top, bottom in ((kbuf, a, b), (vbuf, self.values, other.values)):
            na, nb = top.shape[-2], bottom.shape[-2]
            # masked slots get zeros, not garbage: a masked NaN would still poison softmax @ V
            buf[: top.shape[0], ..., : width - na, :] = 0
            buf[: top.shape[0], ..., width - na: width, :] = top
            buf[top.shape[0]:, ..., : width - nb, :] = 0
            buf[top.shape[0]:, ..., width - nb: width, :] = bottom
        self._set(kbuf, vbuf, width)


    @classmethod
    def over(cls, kbuf: torch.Tensor, vbuf: torch.Tensor, n: int) -> _GrowLayer:
        """A layer whose first ``n`` slots of ``kbuf``/``vbuf`` (views are fine) are filled; appends
        write into the same storage while they fit."""
        layer = cls()
        layer.lazy_initialization(kbuf[..., :n, :], vbuf[..., :n, :])
        layer._set(kbuf, vbuf, n)
        return layer

    @classmethod
    def holding(cls, keys: torch.Tensor, values: torch.Tensor, room: int) -> _GrowLayer:
        """A layer already holding ``keys``/``values`` with ``room`` free slots after them."""
        layer = cls()
        layer.lazy_initialization(keys, values)
        n = keys.shape[-2]
        kbuf = keys.new_empty((*keys.shape[:-2], n + room, keys.shape[-1]))
        vbuf = values.new_empty((*values.shape[:-2], n + room, values.shape[-1]))
        kbuf[..., :n, :] = keys
        vbuf[..., :n, :] = values
        layer._set(kbuf, vbuf, n)
        return layer


def _new_cache(layers: list[_GrowLayer] | None = None) -> DynamicCache:
    cache = DynamicCache()
    cache.layer_class_to_replicate = _GrowLayer
    if layers:
        cache.layers = list(layers)
    return cache


def _forward_params(model: Any) -> set[str]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)


def supports_continuous(model: Any) -> bool:
    """True when the model takes explicit positions and uses sliding-window-free dynamic caches."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    if getattr(cfg, "is_encoder_decoder", False) or getattr(cfg, "sliding_window", None):
        return False
    if getattr(cfg, "layer_types", None) and any(t != "full_attention" for t in cfg.layer_types):
        return False
    params = _forward_params(model)
    return {"position_ids", "attention_mask"} <= params and bool({"cache", "past_key_values"} & params)


def _cache_kwargs(model: Any, cache: DynamicCache, start: int, length: int, device: torch.device) -> dict[str, Any]:
    """The cache arguments of this transformers version's forward (``cache`` in v5, ``past_key_values`` +
    ``cache_position`` before)."""
    params = _forward_params(model)
    kw: dict[str, Any] = {"cache" if "cache" in params else "past_key_values": cache}
    if "cache_position" in params:
        kw["cache_position"] = torch.arange(start, start + length, device=device)
    return kw


def _out_cache(out: Any) -> DynamicCache:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


@dataclass
class _Group:
    """Rows being decoded together. Invariant: ``mask.shape[1]`` == cached length; ``next`` holds
    each row's newest argmax, not yet fed to the model nor recorded."""

    cache: DynamicCache
    mask: torch.Tensor  # [b, L] long
    pos: torch.Tensor  # [b] position of the last token fed
    next: torch.Tensor  # [b]
    rows: list[int]  # window index per row; -1 once the row has finished
    #: argmax after each of the last positions the prefill fed (``_prefill_shared(last=...)``), [b, last]
    tail_argmax: torch.Tensor | None = None

    def select(self, keep: list[int]) -> None:
        idx = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.mask, self.pos, self.next = self.mask[idx], self.pos[idx], self.next[idx]
        self.rows = [self.rows[i] for i in keep]


def _layers(cache: DynamicCache) -> list[_GrowLayer]:
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not _GrowLayer for layer in layers):
        raise TypeError("continuous batching needs the model to fill the DynamicCache it is given")
    return layers


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _merge(a: _Group, b: _Group) -> _Group:
    """One group from two: the shorter cache is left-padded with zeros that the mask hides."""
    width = max(a.mask.shape[1], b.mask.shape[1])
    for la, lb in zip(_layers(a.cache), _layers(b.cache), strict=True):
        la.merged_with(lb, width)
    return _Group(
        cache=a.cache,
        mask=torch.cat([_left_pad(a.mask, width, 1), _left_pad(b.mask, width, 1)], dim=0),
        pos=torch.cat([a.pos, b.pos]),
        next=torch.cat([a.next, b.next]),
        rows=a.rows + b.rows,
    )


def _argmax(logits: torch.Tensor) -> torch.Tensor:
    # generate takes the argmax of fp32 logits; do the same so bf16 ties break identically
    return logits[:, -1, :].float().argmax(dim=-1)


def _prefill(model: Any, prompts: Sequence[list[int]], rows: list[int], pad_id: int,
             device: torch.device, keep_logits: bool) -> _Group:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[r, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    kw: dict[str, Any] = {"logits_to_keep": 1} if keep_logits else {}
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                **_cache_kwargs(model, _new_cache(), 0, width, device), **kw)
    cache = _out_cache(out)
    _layers(cache)
    return _Group(cache=cache, mask=mask, pos=pos[:, -1].clone(), next=_argmax(out.logits), rows=rows)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _prefill_shared(model: Any, prompts: Sequence[list[int]], rows: list[int], keys: Sequence[int], pad_id: int,
                    device: torch.device, keep_logits: bool, last: int = 1,
                    lasts: Sequence[int] | None = None) -> _Group:
    """Prefill windows that share prompt prefixes (the windows of one text) without recomputing them.

    The longest prompt of each text is run once; every window then copies the KV of its longest
    common token prefix with it (keys already carry their rotary positions, which count the same
    real tokens) and only runs its own tail (at least its last token, whose logits start decoding).
    This removes nearly all prefill compute: windows of a text differ by a few characters. Tails
    are run in buckets of similar length (powers of two), so a few long tails do not pad all others;
    every bucket writes into its rows of one shared buffer, laid out so that all rows end at the
    same column (no merge copies afterwards).
    ``last`` > 1 also keeps the argmax after each of the last ``last`` tokens (``tail_argmax``, one
    row per group row, left-padded with -1), which verifies drafts appended to the prompts; row i's
    tail then covers at least ``lasts[i]`` (default ``last``) tokens, the positions whose argmax it
    needs. The group's rows come out in bucket order (``_Group.rows`` says which is which).
    """
    texts = list(dict.fromkeys(keys))
    slot = {k: n for n, k in enumerate(texts)}
    longest: dict[int, list[int]] = {}
    for p, k in zip(prompts, keys, strict=True):
        if k not in longest or len(p) > len(longest[k]):
            longest[k] = p
    full = _prefill(model, [longest[k] for k in texts], list(range(len(texts))), pad_id, device, keep_logits)
    full_width = full.mask.shape[1]
    need = lasts if lasts is not None else [last] * len(prompts)
    lcp = [max(0, min(_common_prefix(p, longest[k]), len(p) - n)) for p, k, n in zip(prompts, keys, need, strict=True)]
    buckets: dict[int, list[int]] = {}
    for i, (p, n) in enumerate(zip(prompts, lcp, strict=True)):
        buckets.setdefault((len(p) - n - 1).bit_length(), []).append(i)
    order = [i for _, idx in sorted(buckets.items()) for i in idx]
    tail_w = {b: max(len(prompts[i]) - lcp[i] for i in idx) for b, idx in buckets.items()}
    width = max(lcp[i] + tail_w[b] for b, idx in buckets.items() for i in idx)  # every row ends here
    room = width + _ROOM
    src_layers = _layers(full.cache)
    big = [(t.new_zeros((len(prompts), *t.shape[1:-2], room, t.shape[-1])),
            v.new_zeros((len(prompts), *v.shape[1:-2], room, v.shape[-1])))
           for t, v in ((layer.keys, layer.values) for layer in src_layers)]
    masks, poss, nexts, tails = [], [], [], []
    start = 0
    for b, idx in sorted(buckets.items()):
        tw = tail_w[b]
        pre_end = width - tw  # this bucket's prefixes end here, its tail block fills [pre_end, width)
        sl = slice(start, start + len(idx))
        start += len(idx)
        n_pref = torch.tensor([lcp[i] for i in idx], device=device)
        col = torch.arange(pre_end, device=device)[None, :]
        j = col - (pre_end - n_pref)[:, None]  # prefix token index per slot (< 0: empty)
        valid = j >= 0
        if bool(valid.any()):
            src = torch.tensor([slot[keys[i]] for i in idx], device=device)
            shift = torch.tensor([full_width - len(longest[keys[i]]) for i in idx], device=device)
            gather = torch.where(valid, shift[:, None] + j, torch.zeros_like(j))
            for layer, (kb, vb) in zip(src_layers, big, strict=True):
                for t, buf in ((layer.keys, kb), (layer.values, vb)):
                    g = t.transpose(1, 2)[src[:, None], gather]  # [rows, pre_end, heads, dim]
                    buf[sl, ..., :pre_end, :] = g.masked_fill(~valid[:, :, None, None], 0).transpose(1, 2)
        ids = torch.full((len(idx), tw), pad_id, dtype=torch.long)
        tail_mask = torch.zeros((len(idx), tw), dtype=torch.long)
        for r, i in enumerate(idx):
            tail = prompts[i][lcp[i]:]
            ids[r, tw - len(tail):] = torch.tensor(tail, dtype=torch.long)
            tail_mask[r, tw - len(tail):] = 1
        ids, tail_mask = ids.to(device), tail_mask.to(device)
        mask = torch.cat([valid.long(), tail_mask], dim=1)
        pos = n_pref[:, None] + (tail_mask.cumsum(-1) - 1).clamp(min=0)
        keep = min(last, tw)
        kw: dict[str, Any] = {"logits_to_keep": keep} if keep_logits else {}
        cache = _new_cache([_GrowLayer.over(kb[sl], vb[sl], pre_end) for kb, vb in big])
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                    **_cache_kwargs(model, cache, pre_end, tw, device), **kw)
        for layer in _layers(_out_cache(out)):
            if layer._n != width:
                raise TypeError("continuous batching needs the model to fill the DynamicCache it is given")
        masks.append(mask)
        poss.append(pos[:, -1].clone())
        nexts.append(_argmax(out.logits))
        if last > 1:
            tail = out.logits[:, -keep:, :].float().argmax(dim=-1)
            if keep < last:
                tail = torch.cat([tail.new_full((tail.shape[0], last - keep), -1), tail], dim=1)
            tails.append(tail)
    cache = _new_cache([_GrowLayer.over(kb, vb, width) for kb, vb in big])
    return _Group(cache=cache, mask=torch.cat(masks), pos=torch.cat(poss), next=torch.cat(nexts),
                  rows=[rows[i] for i in order], tail_argmax=torch.cat(tails) if tails else None)


def _step(model: Any, g: _Group) -> None:
    width = g.mask.shape[1]
    g.mask = torch.cat([g.mask, g.mask.new_ones((g.mask.shape[0], 1))], dim=1)
    g.pos = g.pos + 1
    out = model(input_ids=g.next[:, None], attention_mask=g.mask, position_ids=g.pos[:, None], use_cache=True,
                **_cache_kwargs(model, g.cache, width, 1, g.mask.device))
    g.next = _argmax(out.logits)


def continuous_greedy(
    model: Any,
    prompts: Sequence[list[int]],
    *,
    max_new_tokens: int,
    stops: Sequence[int],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    on_done: Callable[[int, list[int]], None],
    check_stop: Callable[[], None] = lambda: None,
    refill_below: float = 0.5,
    share_keys: Sequence[int] | None = None,
) -> None:
    """Greedy-decode every prompt (in the given order); ``on_done(i, ids)`` gets each row's generated
    ids, ending with its stop token if it emitted one. ``share_keys`` (one key per prompt, e.g. the
    text a window belongs to) lets prompts with the same key share their prefix's prefill; pass the
    prompts grouped by key. Raises torch.OutOfMemoryError untouched: the caller retries with a
    smaller batch (rows already reported are not redone)."""
    keep_logits = "logits_to_keep" in _forward_params(model)
    stop_set = set(stops)
    pending = deque(range(len(prompts)))
    gens: dict[int, list[int]] = {}
    group: _Group | None = None
    while pending or group is not None:
        check_stop()
        alive = [] if group is None else [r for r, i in enumerate(group.rows) if i >= 0]
        if pending and len(alive) <= batch_size * refill_below:
            take = [pending.popleft() for _ in range(min(batch_size - len(alive), len(pending)))]
            chunk = [prompts[i] for i in take]
            if share_keys is None:
                fresh = _prefill(model, chunk, take, pad_id, device, keep_logits)
            else:
                fresh = _prefill_shared(model, chunk, take, [share_keys[i] for i in take], pad_id, device,
                                        keep_logits)
            for i in take:
                gens[i] = []
            if group is not None and len(alive) < len(group.rows):
                group.select(alive)
            group = fresh if group is None else _merge(group, fresh)
        assert group is not None
        keep: list[int] = []
        for r, tok in enumerate(group.next.tolist()):
            i = group.rows[r]
            if i < 0:
                continue  # finished earlier, still riding along until the next compaction
            gens[i].append(tok)
            if tok in stop_set or len(gens[i]) >= max_new_tokens:
                on_done(i, gens.pop(i))
                group.rows[r] = -1
            else:
                keep.append(r)
        if not keep:
            group = None
            continue
        # Compacting copies the whole cache, so finished rows ride along until they are a third
        # of the batch: a little wasted compute instead of a copy on almost every step.
        if len(group.rows) - len(keep) > len(group.rows) // 3:
            group.select(keep)
        _step(model, group)
