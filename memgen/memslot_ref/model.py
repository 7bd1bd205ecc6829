"""The reference hybrid, learned form: S editable slots with learned gates, an exact version
counter per slot, a read head, a block top-k fallback, and a learned gate between them.

It is a memory on the shared front end (:mod:`memgen.models.frontend`): it reads the front
end's key, value and gate context at every position and answers at the answer slots.

**Gates** (from the gate context of the last 4 tokens, one linear head each):

* write ``w_t``: store the value token at t under the key before it (a write, an overwrite
  or a silent write; not a distractor's value);
* overwrite (the slot match): a write whose key matches a used slot (``sigmoid(tau (cos - theta))
  > 1/2``) edits that slot, appending a version; any other write takes a free slot;
* discard ``d_t``: invalidate the slot of the key before t (the token after ``DELETE k1 k2``);
  the slot keeps its history, so a key written again continues its version count.

**Slot state** (a value, :class:`SlotState`): per slot its key, its history of values (the
h-th entry is version h + 1), an exact integer version counter, a valid flag (holds a value
now) and a used flag.  **Read head**: at a query, the used slot nearest the query key, if its
match gate is open; the ask (a learned 3-way mode from the gate context: latest, version,
previous; k from the front end) picks the entry: ``latest`` = entry count - 1, ``version`` k =
entry k - 1, ``previous`` = entry count - 2; an invalid slot, or an entry that does not exist,
reads the "unknown" embedding.

**Fallback**: block top-k over the positions before the query (blocks of 64): blocks scored by
their best key match with the query, the query's own block plus the top ``fallback_k`` earlier
ones kept (equal scores: the newer block), and attention over their positions (key match plus a
learned "stated value" bias, and a learned null entry that reads "unknown"), both steps through
:mod:`memgen.kernels` (``select_blocks(reduce="max")``, ``block_topk_attention``).  It sees
what the slots may not have: facts never written to a slot.  A learned **route gate** (gate
context, whether a slot of the key exists, the fallback's best match) mixes the slot read and the fallback read.

**Two forms of one model.**  Training (``module.train()``) uses the *parallel* form over a
whole sequence: every write of the query's key (soft gates times the soft match) joins the
key's slot, the counter is the cumulative sum of write gates, and "the last event is a write"
is a product of (1 - gate) terms; gradients reach every gate.  Inference (``module.eval()``)
uses the *recurrent* form: gates and match thresholded at 1/2, chunk by chunk, with the state
carried.  With saturated gates the two agree (tested), as long as the keys written are at most
``slots``.

**The recurrent form through the kernels.**  Per chunk it first *addresses*, in a loop over each
row's events and reads in stream order (a read before an event at its position): each event and
each read gets the used slot nearest its key if that slot's match gate is open, a write of a new
key the first free slot (or it is dropped when none is free).  Addressing reads the slot keys
alone, which change only when a new key takes a slot, so it needs none of the table's values.
Then the table is updated and read in *rounds*, all rows at once: ``kernels.slot_write`` applies
a round's commands (write / discard, gates 0 or 1, each row's commands in order, padded with
slot -1), then ``kernels.slot_read`` answers the round's reads.  A read goes in the round of its
slot's last command before it, and a later command on that slot in a later round than the read,
so every read sees its slot as it stood at the read's position (commands on different slots
commute); with the queries at the end of the stream that is one round.  No slot is protected
(``slot_write``'s ``protected`` is all False): nothing in the hybrid calls for it yet.

A read is one head of ``slot_read`` over the slots (their keys and values shared by the heads),
its mask the one slot it was addressed to, its logits the learned match sharpness times the
cosine: the softmax gives that slot weight 1, so the read equals the hard nearest-slot read bit
for bit (the hard-gate form of a softmax over the open slots; in every held-out set checked,
the addressed slot was the only open one anyway).  What it reads is each slot's answers: its
entries, its latest and its previous value, "unknown" where the slot holds no value or the
entry is not in the table (a key written more than ``max_version`` times has its latest value
counted but not kept, so latest reads "unknown"); the ask k picks the version entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memgen import kernels
from memgen.models.frontend import EMPTY_TAPE, Features, FrontEndConfig, Tape, check_ceilings, gather_reads

EPS = 1e-6


@dataclass(frozen=True)
class MemslotConfig:
    slots: int = 512  # S: slots in the recurrent table (the parallel form has one per key)
    fallback_k: int = 1  # earlier blocks the fallback reads, besides the query's own
    block: int = 64  # tokens per fallback block


class SlotState(NamedTuple):
    keys: Tensor  # (B, S, dk) the key of each used slot
    values: Tensor  # (B, S, H, d) history: entry h is version h + 1
    count: Tensor  # (B, S) long, exact version counter (values the key has had)
    valid: Tensor  # (B, S) bool, holds a value now
    used: Tensor  # (B, S) bool, allocated
    cache: Tape  # fallback: (key (B, N, dk), value (B, N, d), bias (B, N)) of the N positions so far
    dropped: Tensor  # (B,) long, writes of new keys that found no free slot


def _hat(x: Tensor) -> Tensor:
    """1 at 0, falling to 0 at +-1: a soft 'equals' for (soft) integer counts."""
    return (1 - x.abs()).clamp(min=0)


def _take(x: Tensor, idx: Tensor) -> Tensor:
    """x (B, T, ...) at idx (B, Q) -> (B, Q, ...)."""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], idx]


class MemslotMemory(nn.Module):
    #: the table is slots x max_version x d_model floats per row; fallback_k + 1 blocks read per query
    CEILINGS = {"slots": (1, 16384), "fallback_k": (0, 64), "block": (1, 4096)}

    def __init__(self, cfg: FrontEndConfig, slots: int = 512, fallback_k: int = 1, block: int = 64):
        super().__init__()
        check_ceilings("memslot_ref", self.CEILINGS, slots=slots, fallback_k=fallback_k, block=block)
        self.cfg = cfg
        self.knobs = MemslotConfig(slots, fallback_k, block)
        dc = cfg.d_context
        self.write_gate = nn.Linear(dc, 1)
        self.discard_gate = nn.Linear(dc, 1)
        self.value_bias = nn.Linear(dc, 1)  # fallback: "this position states a value"
        self.mode = nn.Linear(dc, 3)  # latest, version, previous
        self.route_gate = nn.Linear(dc + 2, 1)
        self.log_tau = nn.Parameter(torch.tensor(3.0))  # match sharpness, exp(3) = 20
        self.theta = nn.Parameter(torch.tensor(0.8))  # match threshold on the key cosine
        self.log_tau_fallback = nn.Parameter(torch.tensor(2.0))
        self.null = nn.Parameter(torch.tensor(0.0))  # fallback's "unknown" logit
        for g in (self.write_gate, self.discard_gate):
            nn.init.constant_(g.bias, -2.0)  # start closed: filler is most of every stream
        self.trace: dict[str, Tensor] = {}  # set by the recurrent form: per read, route gate and blocks read

    # ---- the pieces both forms share
    def gates(self, f: Features) -> tuple[Tensor, Tensor]:
        """(write logits, discard logits), (B, T) each."""
        return self.write_gate(f.context).squeeze(-1), self.discard_gate(f.context).squeeze(-1)

    def initial_state(self, batch: int) -> SlotState:
        """The empty table.  It holds no slot yet: the table grows as keys are written, up to
        ``slots`` slots of ``max_version`` entries (so a batch of short rows stays small)."""
        S, H = 0, 0
        dk, d = self.cfg.d_key, self.cfg.d_model
        dev = self.theta.device
        return SlotState(torch.zeros(batch, S, dk, device=dev), torch.zeros(batch, S, H, d, device=dev),
                         torch.zeros(batch, S, dtype=torch.long, device=dev),
                         torch.zeros(batch, S, dtype=torch.bool, device=dev),
                         torch.zeros(batch, S, dtype=torch.bool, device=dev), EMPTY_TAPE,
                         torch.zeros(batch, dtype=torch.long, device=dev))

    def _combine(self, f: Features, qpos: Tensor, r_modes: Tensor, slot_seen: Tensor,
                 r_fb: Tensor, fb_max: Tensor) -> tuple[Tensor, Tensor]:
        """Mix the three ask modes (r_modes (B, Q, 3, d)) and the slot/fallback reads."""
        ctx = _take(f.context, qpos)  # (B, Q, dc)
        p = torch.softmax(self.mode(ctx), -1)  # (B, Q, 3)
        r_slot = (p[..., None] * r_modes).sum(2)  # (B, Q, d)
        g = torch.sigmoid(self.route_gate(torch.cat([ctx, slot_seen[..., None], fb_max[..., None]], -1)))
        return g * r_slot + (1 - g) * r_fb, g.squeeze(-1)  # (B, Q, d), (B, Q)

    def fallback(self, kq: Tensor, qpos: Tensor, keys: Tensor, values: Tensor, bias: Tensor,
                 absent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Block top-k read of the positions before each query.

        kq (B, Q, dk), qpos (B, Q) absolute; keys (B, N, dk), values (B, N, d), bias (B, N) of
        positions 0..N-1.  Returns (read (B, Q, d), best match (B, Q), blocks read (B, Q))."""
        N, blk = keys.shape[1], self.knobs.block
        q1, k1 = kq[:, :, None], keys[:, :, None]  # (B, Q, 1, dk), (B, N, 1, dk): one head
        with torch.no_grad():  # selection is discrete (NSA): gradients flow through the attention
            idx, ok = kernels.select_blocks(q1, k1, qpos, blk, self.knobs.fallback_k, "max")  # (B, Q, 1, k)
        o, lse = kernels.block_topk_attention(self.log_tau_fallback.exp() * q1, k1, values[:, :, None], qpos,
                                              idx, ok, blk, scale=1.0, bias=bias[:, :, None])  # (B, Q, 1, d)
        read = kernels.with_null(o, lse, self.null, absent)[:, :, 0]  # (B, Q, d)
        pos, seen = kernels.block_positions(qpos, idx, ok, blk)  # (B, Q, 1, P): the positions read
        kk = _take(keys, pos.clamp(max=max(N - 1, 0)).flatten(1)).view(*pos.shape[:2], -1, keys.shape[-1])
        sim = (kk @ kq[..., None]).squeeze(-1).masked_fill(~seen[:, :, 0], -1.0)  # (B, Q, P)
        return read, sim.amax(-1), ok[:, :, 0].sum(-1) + 1  # the route gate reads the best match

    # ---- parallel form (training)
    def parallel(self, f: Features, read: Tensor, hard: bool = False) -> Tensor:
        """Output (B, T, d) at the read positions, from the empty state, over the whole chunk."""
        B, T, d = f.value.shape
        qpos, qmask = gather_reads(read)  # (B, Q)
        kq = _take(f.key, qpos)  # (B, Q, dk)
        wl, dl = self.gates(f)  # (B, T)
        sim = kq @ f.key.transpose(1, 2)  # (B, Q, T)
        before = torch.arange(T, device=read.device)[None, None, :] < qpos[..., None]  # (B, Q, T)
        if hard:
            w, dg = (wl > 0).float(), (dl > 0).float()
            m = (sim > self.theta).float() * before
        else:
            w, dg = torch.sigmoid(wl), torch.sigmoid(dl)
            m = torch.sigmoid(self.log_tau.exp() * (sim - self.theta)) * before
        e = w[:, None, :] * m  # (B, Q, T) writes of the query's key
        x = dg[:, None, :] * m  # (B, Q, T) discards of the query's key
        count = torch.cumsum(e, -1)  # (B, Q, T) version counter after t
        total = count[..., -1:]  # (B, Q, 1) values the key has had before the query
        keep = torch.log1p(-e * (1 - EPS)) + torch.log1p(-x * (1 - EPS))  # log P(no event at t)
        after = torch.flip(torch.cumsum(torch.flip(keep, [-1]), -1), [-1]) - keep  # log P(no event after t)
        last = e * after.exp()  # (B, Q, T) P(t is the last event and a write)
        holds = last.sum(-1, keepdim=True)  # (B, Q, 1) P(the key holds a value)
        k = _take(f.ask_k, qpos).float()[..., None]  # (B, Q, 1)
        ver = e * _hat(count - k)  # (B, Q, T) the k-th write
        prev = e * _hat(count - (total - 1))  # (B, Q, T) the write before the last
        a = f.absent
        r_latest = last @ f.value + (1 - holds) * a  # (B, Q, d)
        r_ver = holds * (ver @ f.value + (1 - ver.sum(-1, keepdim=True)) * a) + (1 - holds) * a
        r_prev = holds * (prev @ f.value + (1 - prev.sum(-1, keepdim=True)) * a) + (1 - holds) * a
        r_modes = torch.stack([r_latest, r_ver, r_prev], 2)  # (B, Q, 3, d)
        slot_seen = e.sum(-1).clamp(max=1.0)  # (B, Q) a slot of the key exists
        bias = self.value_bias(f.context).squeeze(-1)  # (B, T)
        r_fb, fb_max, _ = self.fallback(kq, qpos + int(f.pos[0]), f.key, f.value, bias, a)
        out_q, _ = self._combine(f, qpos, r_modes, slot_seen, r_fb, fb_max)
        out = torch.zeros(B, T, d, device=f.value.device, dtype=out_q.dtype)
        rows = torch.arange(B, device=read.device)[:, None].expand_as(qpos)
        return out.index_put((rows[qmask], qpos[qmask]), out_q[qmask])

    def aux_loss(self, f: Features, write_label: Tensor, discard_label: Tensor, supervised: bool) -> Tensor:
        """Lite write supervision (BCE of the write / discard gates against the IR's events) when
        ``supervised``; always a small sparsity prior on the write gate (most tokens are filler)."""
        wl, dl = self.gates(f)
        loss = 0.01 * torch.sigmoid(wl).mean()
        if supervised:
            loss = loss + F.binary_cross_entropy_with_logits(wl, write_label) \
                + F.binary_cross_entropy_with_logits(dl, discard_label)
        return loss

    # ---- recurrent form (inference)
    def forward(self, f: Features, state: SlotState | None, read: Tensor) -> tuple[Tensor, SlotState | None]:
        """Training: the parallel form (one whole sequence, ``state`` None); else the recurrent one."""
        if self.training:
            if state is not None or int(f.pos[0]) != 0:
                raise ValueError("the parallel (training) form runs one whole sequence from the empty state")
            return self.parallel(f, read), None
        return self.recurrent(f, state if state is not None else self.initial_state(f.ids.shape[0]), read)

    @torch.no_grad()
    def recurrent(self, f: Features, state: SlotState, read: Tensor) -> tuple[Tensor, SlotState]:
        """The slot table with hard gates, updated and read through :mod:`memgen.kernels`: addressing
        (:meth:`_address`) gives every command and read its slot and its round; then, round by
        round, ``slot_write`` applies the round's commands and ``slot_read`` answers its reads
        (:meth:`_read`), each read seeing its slot as it stood at the read's position."""
        B, T, d = f.value.shape
        H = self.cfg.vocab.max_version
        wl, dl = self.gates(f)
        write, discard = wl > 0, dl > 0  # (B, T)
        # grow the table to what this chunk can need: used slots + its writes, at most `slots`
        S0, H0 = state.values.shape[1], state.values.shape[2]
        most = int(write.sum(1).max()) if T else 0
        S1 = max(S0, min(self.knobs.slots, (int(state.used.sum(1).max()) if S0 else 0) + most))
        H1 = max(H0, min(H, H0 + most))
        keys = F.pad(state.keys, (0, 0, 0, S1 - S0))  # (B, S1, dk), a new tensor
        values = F.pad(state.values, (0, 0, 0, H1 - H0, 0, S1 - S0))  # (B, S1, H1, d)
        count, valid, used = (F.pad(x, (0, S1 - S0)) for x in (state.count, state.valid, state.used))
        dropped = state.dropped.clone()
        qpos, qmask = gather_reads(read)  # (B, Q)
        Q = qpos.shape[1]
        kq = _take(f.key, qpos)  # (B, Q, dk)
        ask_k = _take(f.ask_k, qpos)  # (B, Q)
        r_modes = f.absent.expand(B, Q, 3, d).clone()  # (B, Q, 3, d)
        slot_seen = torch.zeros(B, Q, device=f.value.device)
        rounds = self._address(f, write, discard, qpos, qmask, kq, keys, used, dropped)
        protected = torch.zeros_like(valid)  # the hybrid protects no slot
        for r in range(max(map(len, rounds), default=0)):
            cmd = _padded([row[r][0] if r < len(row) else [] for row in rounds], (-1, 0, 0, 0), f.value.device)
            if cmd.shape[1]:  # (B, N, 4): slot, position, write, discard
                values, count, valid = kernels.slot_write(values, count, valid, protected, cmd[..., 0],
                                                          _take(f.value, cmd[..., 1]), cmd[..., 2].float(),
                                                          cmd[..., 3].float())
            rd = _padded([row[r][1] if r < len(row) else [] for row in rounds], (-1, -1), f.value.device)
            if rd.shape[1] and S1:  # (B, R, 2): read index j, its slot (-1: no slot open)
                self._read(f, kq, ask_k, keys, values, count, valid, rd, r_modes, slot_seen)
        bias = self.value_bias(f.context).squeeze(-1)  # (B, T)
        cache = state.cache.append(f.key, f.value, bias, align=self.knobs.block)
        out = torch.zeros(B, T, d, device=f.value.device)
        self.trace = {"gate": torch.zeros(B, Q), "blocks": torch.zeros(B, Q, dtype=torch.long),
                      "qpos": qpos, "qmask": qmask}
        if Q:
            # whole blocks (views, no copy): rows past the stream are after every query, so masked
            ck, cv, cb = cache.tensors(-(-cache.n // self.knobs.block) * self.knobs.block)
            r_fb, fb_max, blocks = self.fallback(kq, qpos + int(f.pos[0]), ck, cv, cb, f.absent)
            out_q, g = self._combine(f, qpos, r_modes, slot_seen, r_fb, fb_max)
            rows = torch.arange(B)[:, None].expand_as(qpos)
            out[rows[qmask], qpos[qmask]] = out_q[qmask]
            self.trace.update(gate=g, blocks=blocks)
        return out, SlotState(keys, values, count, valid, used, cache, dropped)

    def _address(self, f: Features, write: Tensor, discard: Tensor, qpos: Tensor, qmask: Tensor, kq: Tensor,
                 keys: Tensor, used: Tensor, dropped: Tensor) -> list[list[tuple[list, list]]]:
        """Give each row's events (hard write / discard gates) and reads, in order (a read before an
        event at its position), their slot: the used slot nearest the key, if its match gate is open
        (cosine > theta); else, for a write, the first free slot (a new key: ``keys`` and ``used``
        are updated in place); else the write is dropped (``dropped`` += 1).  It depends on the keys
        alone, which change only when a new key takes a slot, so it runs before the table is touched.

        Returns per row its rounds, each (commands, reads): the commands as (slot, position, write,
        discard), in stream order, and the reads as (read index, slot or -1), to run after them.  A
        read goes in the round of its slot's last command before it (round 0 for none, or no open
        slot); a command in the round of its slot's last command, or the one after its slot's last
        read if that is later.  Commands on different slots commute, so each read sees its slot's
        commands before it and none after."""
        theta = float(self.theta)
        free = ~used  # (B, S), kept with the keys; used is set from it per row
        rounds = []
        for b in range(write.shape[0]):
            ev = (write[b] | discard[b]).nonzero().squeeze(1).tolist()
            w_ev, d_ev, k_ev = write[b, ev].tolist(), discard[b, ev].tolist(), f.key[b, ev].unbind(0)
            k_rd = kq[b].unbind(0)
            kb, fb = keys[b], free[b]  # views
            vacant = fb.nonzero().squeeze(1).tolist()  # the free slots, in order: a new key takes the first
            taken, n_used = 0, fb.numel() - len(vacant)
            # reads before events at the same position: a query sees the state before its slot
            items = sorted([(t, 0, j) for j, t in enumerate(qpos[b, qmask[b]].tolist())]
                           + [(t, 1, i) for i, t in enumerate(ev)])
            row: list[tuple[list, list]] = [([], [])]
            cmd_round: dict[int, int] = {}  # slot -> round of its last command so far
            read_round: dict[int, int] = {}  # slot -> round of its last read so far
            for t, kind, j in items:
                kt = k_rd[j] if kind == 0 else k_ev[j]
                s, hit = -1, False
                if n_used:
                    best, at = (kb @ kt).masked_fill(fb, -2.0).max(0)  # the nearest used slot (the first of equals)
                    s, hit = int(at), float(best) > theta
                if kind == 0:  # read: after its slot's commands so far (round 0 if no slot is open)
                    r = cmd_round.get(s, 0) if hit else 0
                    if hit:
                        read_round[s] = max(read_round.get(s, 0), r)
                    row[r][1].append((j, s if hit else -1))
                    continue
                wr, dis = w_ev[j], d_ev[j] and hit
                if wr and not hit:
                    if taken == len(vacant):
                        dropped[b] += 1
                        continue
                    s, taken, n_used = vacant[taken], taken + 1, n_used + 1
                    fb[s], kb[s] = False, kt
                if wr or dis:  # after its slot's commands and reads so far
                    r = max(cmd_round.get(s, 0), read_round[s] + 1 if s in read_round else 0)
                    cmd_round[s] = r
                    row.extend(([], []) for _ in range(r + 1 - len(row)))
                    row[r][0].append((s, t, int(wr), int(dis)))
            used[b] = ~fb
            rounds.append(row)
        return rounds

    @staticmethod
    def _answers(values: Tensor, count: Tensor, valid: Tensor, absent: Tensor) -> Tensor:
        """What each slot answers, (B, S, E + 2, d): its E entries (entry e is version e + 1), then
        its latest (entry count - 1) and its previous value (entry count - 2), each the "unknown"
        embedding where the slot holds no value now or the entry is not in the table."""
        B, S, E, d = values.shape
        e = torch.arange(E, device=values.device)
        hist = torch.where((valid[..., None] & (e < count[..., None]))[..., None], values, absent)  # (B, S, E, d)

        def entry(i: Tensor, ok: Tensor) -> Tensor:  # entry i (B, S) of each slot, where ok
            got = values.gather(2, i.clamp(0, E - 1)[..., None, None].expand(B, S, 1, d))
            return torch.where(ok[..., None, None], got, absent)

        latest = entry(count - 1, valid & (count <= E))  # a valid slot has count >= 1
        previous = entry(count - 2, valid & (count >= 2) & (count <= E + 1))
        return torch.cat([hist, latest, previous], 2)

    def _read(self, f: Features, kq: Tensor, ask_k: Tensor, keys: Tensor, values: Tensor, count: Tensor,
              valid: Tensor, rd: Tensor, r_modes: Tensor, slot_seen: Tensor) -> None:
        """One round of reads through ``slot_read``, into ``r_modes`` (B, Q, 3, d) and ``slot_seen``
        (B, Q) in place.  ``rd`` (B, R, 2): per read its index j (-1: padding) and its slot (-1: no
        match gate open).  Each read is a head with its own mask: the slot it was addressed to, so
        the softmax (of the learned match sharpness times the cosine) reads that slot alone, with
        weight 1, exactly (the hard-gate form of a read over the open slots).  The value read is
        the slot's answers (:meth:`_answers`); the ask k picks the version entry from them."""
        B, S, E, d = values.shape
        R, j, s = rd.shape[1], rd[..., 0], rd[..., 1]
        jq = j.clamp(min=0)
        open_ = torch.zeros(B, S, R, dtype=torch.bool, device=values.device)  # (B, S, R): per read its slot
        bi, ri = (s >= 0).nonzero(as_tuple=True)
        open_[bi, s[bi, ri], ri] = True
        dk = keys.shape[-1]
        v = self._answers(values, count, valid, f.absent).view(B, S, 1, (E + 2) * d)
        o, lse = kernels.slot_read(_take(kq, jq)[:, None], keys[:, :, None].expand(B, S, R, dk),
                                   v.expand(B, S, R, (E + 2) * d), open_, float(self.log_tau.exp()))
        o, hit = o[:, 0].view(B, R, E + 2, d), torch.isfinite(lse[:, 0])  # (B, R, E + 2, d), (B, R)
        k = _take(ask_k, jq)  # (B, R)
        ver = o.gather(2, (k - 1).clamp(0, E - 1)[..., None, None].expand(B, R, 1, d))[:, :, 0]
        ver = torch.where(((k >= 1) & (k <= E))[..., None], ver, f.absent)
        modes = torch.stack([o[:, :, E], ver, o[:, :, E + 1]], 2)  # latest, version k, previous
        modes = torch.where(hit[..., None, None], modes, f.absent)  # no slot open: "unknown"
        bi, ri = (j >= 0).nonzero(as_tuple=True)
        r_modes[bi, j[bi, ri]] = modes[bi, ri]
        slot_seen[bi, j[bi, ri]] = hit[bi, ri].float()


def _padded(rows: list[list[tuple[int, ...]]], fill: tuple[int, ...], device) -> Tensor:
    """Per row a list of equal-length int tuples -> (B, N, len(fill)) long, padded with ``fill``."""
    n = max(map(len, rows), default=0)
    flat = [list(r) + [fill] * (n - len(r)) for r in rows]
    return torch.tensor(flat, dtype=torch.long, device=device).view(len(rows), n, len(fill))
