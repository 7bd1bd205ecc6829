"""``delta_net``, learned: a gated delta-rule fixed state on the shared front end, the learned
counterpart of the ``fixed_state`` mechanism.

The state S (per head, d_key x d_model) takes, at every position t,

    S <- exp(g_t) S                                  (forget gate, g_t <= 0)
    S <- S + beta_t k_t (v_t - S^T k_t)^T            (delta rule: replace the value stored at k_t)
    o_t = S^T q_t

with k_t = q_t = the front end's key (one encoder for writes and reads), v_t the value token's
embedding (times 1 - delete gate: a discard writes the null vector), beta_t and g_t from the
gate context.  The answer mixes o_t with the "unknown" embedding by a learned gate of the
read's size.  There is one state per head and no history: version asks get the current value.

The recurrence has two forms with one signature and layout ``[B, T, H, D]``, side by side as in
flash-linear-attention's ``naive.py``: :func:`delta_rule_recurrent` (one rank-1 update per
token) and :func:`delta_rule_chunkwise` (the WY form: per chunk of C tokens, a unit lower
triangular solve gives the chunk's corrected values, then two matmuls); tests check them equal
with an RMS-ratio tolerance.  The model runs the chunkwise form.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from memgen.models.frontend import Features, FrontEndConfig, check_ceilings


def delta_rule_recurrent(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                         state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """q, k (B, T, H, K); v (B, T, H, V); g (log decay <= 0), beta (B, T, H); state (B, H, K, V).
    Returns o (B, T, H, V) and the final state."""
    B, T, H, K = k.shape
    V = v.shape[-1]
    S = torch.zeros(B, H, K, V, dtype=v.dtype, device=v.device) if state is None else state
    out = []
    for t in range(T):
        S = S * g[:, t].exp()[..., None, None]  # (B, H, K, V)
        kt = k[:, t]  # (B, H, K)
        old = (S * kt[..., None]).sum(-2)  # (B, H, V) value stored at k_t
        S = S + kt[..., None] * (beta[:, t, :, None] * (v[:, t] - old))[..., None, :]
        out.append((S * q[:, t, :, :, None]).sum(-2))  # (B, H, V)
    return torch.stack(out, 1), S


def delta_rule_chunkwise(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
                         state: Tensor | None = None, chunk: int = 64) -> tuple[Tensor, Tensor]:
    """The same recurrence, chunk by chunk (WY form); same arguments and returns."""
    B, T, H, K = k.shape
    V = v.shape[-1]
    S = torch.zeros(B, H, K, V, dtype=v.dtype, device=v.device) if state is None else state
    pad = -T % chunk
    if pad:  # padded tokens: beta 0 and no decay, so they change nothing
        q, k, v = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v))
        g, beta = F.pad(g, (0, 0, 0, pad)), F.pad(beta, (0, 0, 0, pad))
    n, C = (T + pad) // chunk, chunk
    # (B, H, n, C, D): heads first inside the computation
    q, k, v = (x.view(B, n, C, H, -1).permute(0, 3, 1, 2, 4) for x in (q, k, v))
    g, beta = (x.view(B, n, C, H).permute(0, 3, 1, 2) for x in (g, beta))
    gam = g.cumsum(-1)  # (B, H, n, C) log decay from the chunk start, inclusive
    decay = (gam[..., :, None] - gam[..., None, :])  # (B, H, n, C, C) gamma_i - gamma_j
    lower = torch.tril(torch.ones(C, C, dtype=torch.bool, device=k.device), -1)
    lower_incl = torch.tril(torch.ones(C, C, dtype=torch.bool, device=k.device))
    decay_strict = decay.masked_fill(~lower, float("-inf")).exp()
    kb = k * beta[..., None]  # (B, H, n, C, K)
    # (I + L) v_new = beta v - (k beta e^gamma) S0,  L_ij = beta_i e^(gamma_i - gamma_j) k_i . k_j, j < i
    M = torch.eye(C, dtype=k.dtype, device=k.device) + (kb @ k.transpose(-1, -2)) * decay_strict
    u = torch.linalg.solve_triangular(M, v * beta[..., None], upper=False, unitriangular=True)  # (.., C, V)
    w = torch.linalg.solve_triangular(M, kb * gam.exp()[..., None], upper=False, unitriangular=True)  # (.., C, K)
    attn = (q @ k.transpose(-1, -2)) * decay.masked_fill(~lower_incl, float("-inf")).exp()  # (.., C, C)
    outs = []
    for i in range(n):
        v_new = u[:, :, i] - w[:, :, i] @ S  # (B, H, C, V)
        outs.append((q[:, :, i] * gam[:, :, i, :, None].exp()) @ S + attn[:, :, i] @ v_new)
        last = gam[:, :, i, -1]  # (B, H)
        S = S * last.exp()[..., None, None] + \
            (k[:, :, i] * (last[..., None] - gam[:, :, i]).exp()[..., None]).transpose(-1, -2) @ v_new
    o = torch.stack(outs, 2).permute(0, 2, 3, 1, 4).reshape(B, n * C, H, V)  # (B, T+pad, H, V)
    return o[:, :T], S


class DeltaState(NamedTuple):
    S: Tensor  # (B, H, K, V)


class DeltaNetMemory(nn.Module):
    #: the state is heads x d_key x d_model floats per row; the chunkwise form holds chunk x chunk matrices
    CEILINGS = {"heads": (1, 64), "chunk": (1, 1024)}

    def __init__(self, cfg: FrontEndConfig, heads: int = 2, chunk: int = 64):
        super().__init__()
        check_ceilings("delta_net", self.CEILINGS, heads=heads, chunk=chunk)
        self.cfg, self.heads, self.chunk = cfg, heads, chunk
        dc, dk = cfg.d_context, cfg.d_key
        self.qk = nn.Linear(dk, heads * dk, bias=False)  # per-head keys from the shared key
        self.beta = nn.Linear(dc, heads)
        self.decay = nn.Linear(dc, heads)
        self.discard = nn.Linear(dc, 1)
        self.absent_gate = nn.Linear(dc + 1, 1)
        nn.init.constant_(self.decay.bias, 6.0)  # start with almost no forgetting
        nn.init.constant_(self.beta.bias, -2.0)

    def initial_state(self, batch: int) -> DeltaState:
        H, K, V = self.heads, self.cfg.d_key, self.cfg.d_model
        return DeltaState(torch.zeros(batch, H, K, V, device=self.beta.weight.device))

    def forward(self, f: Features, state: DeltaState | None, read: Tensor) -> tuple[Tensor, DeltaState]:
        B, T, d = f.value.shape
        H, K = self.heads, self.cfg.d_key
        k = F.normalize(self.qk(f.key).view(B, T, H, K), dim=-1)  # (B, T, H, K)
        beta = torch.sigmoid(self.beta(f.context))  # (B, T, H)
        g = F.logsigmoid(self.decay(f.context))  # (B, T, H) log decay
        v = f.value * (1 - torch.sigmoid(self.discard(f.context)))  # (B, T, d): a discard writes ~0
        v = v[:, :, None, :].expand(B, T, H, d)
        S0 = None if state is None else state.S
        o, S = delta_rule_chunkwise(k, k, v, g, beta, S0, self.chunk)  # (B, T, H, d)
        o = o.mean(2)  # (B, T, d)
        a = torch.sigmoid(self.absent_gate(torch.cat([f.context, o.norm(dim=-1, keepdim=True)], -1)))
        return o + a * f.absent, DeltaState(S)
