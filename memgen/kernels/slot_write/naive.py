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
    for n in range(slot.shape[1]):
        s = slot[:, n].clamp(min=0)  # (B,)
        live = (slot[:, n] >= 0) & ~protected[rows, s]  # (B,)
        valid[rows, s] = valid[rows, s] & ~(live & (discard[:, n] > 0.5))
        e = count[rows, s]  # (B,)
        if E:
            ec = e.clamp(max=E - 1)
            w = (write[:, n] * (live & (e < E)))[:, None]  # (B, 1): no move without room
            entry = values[rows, s, ec]  # (B, Dv)
            values = values.index_put((rows, s, ec), entry + w * (x[:, n] - entry))
        commit = live & (write[:, n] > 0.5)
        count[rows, s] = e + commit.long()
        valid[rows, s] = valid[rows, s] | commit
    return SlotTable(values, count, valid)
