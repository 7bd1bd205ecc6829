"""Slot write, plain PyTorch: the reference twin of :mod:`.triton` (same signature, same layout)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class SlotTable(NamedTuple):
    """A slot table as a value (the learned hybrid's :class:`~memgen.memslot_ref.model.SlotState`)."""

    values: Tensor  # (B, S, E, Dv) history: entry e of a slot is its version e + 1
    count: Tensor  # (B, S) long, exact version counter (values the slot's key has had)
    valid: Tensor  # (B, S) bool, the slot holds a value now


def slot_write(values: Tensor, count: Tensor, valid: Tensor, protected: Tensor, slot: Tensor, x: Tensor,
               write: Tensor, discard: Tensor) -> SlotTable:
    """Apply N commands, in order, to the slot table (values (B, S, E, Dv), count (B, S) long,
    valid (B, S) bool); slots where ``protected`` (B, S) ignore every command.

    Command n of row b addresses slot ``slot[b, n]`` (-1: none) with value x (B, N, Dv), write gate
    ``write`` (B, N) and discard gate ``discard`` (B, N), both in [0, 1]:

    * discard (``discard > 1/2``): the slot no longer holds a value (``valid`` False); its history
      and counter stay, so a key written again continues its version count;
    * write / overwrite: the slot's next entry e = count moves toward x by the gate,
      ``entry += write * (x - entry)``; an open gate (``write > 1/2``) commits it: count + 1, valid.
      A write to a slot whose E entries are full only counts (the counter stays exact).

    A command that discards and writes does both, discard first (a write wins).  With 0/1 gates this
    is the learned hybrid's recurrent update.  Differentiable in values, x and write (the soft move
    of the entry); discard acts on the flag only, and the integer state has no gradient."""
    B, S, E, Dv = values.shape
    values, count, valid = values.clone(), count.clone(), valid.clone()
    rows = torch.arange(B, device=values.device)
    at = slot.clamp(min=0)  # (B, N)
    live = (slot >= 0) & ~protected.gather(1, at)  # (B, N): protection does not change
    keep, commit = ~(live & (discard > 0.5)), live & (write > 0.5)  # (B, N)
    for s, lv, kp, cm, w, xn in zip(at.unbind(1), live.unbind(1), keep.unbind(1), commit.unbind(1),
                                    write.unbind(1), x.unbind(1), strict=True):  # command n: (B,) each, xn (B, Dv)
        e = count[rows, s]  # (B,)
        if E:
            ec = e.clamp(max=E - 1)
            g = (w * (lv & (e < E)))[:, None]  # (B, 1): no move without room
            entry = values[rows, s, ec]  # (B, Dv), a copy
            values.index_put_((rows, s, ec), entry + g * (xn - entry))  # in place on the clone: O(B Dv)
        count[rows, s] = e + cm
        valid[rows, s] = (valid[rows, s] & kp) | cm  # discard first, then an open write commits
    return SlotTable(values, count, valid)
