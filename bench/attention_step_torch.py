"""PyTorch's side of bench/attention_step.lua: the attention step of
spec/fixtures/generate_attention.py (the reference module of recur.nn.Attention, its
parameters), float32, B=64, S=30, H=256, T=30 steps forward, then backward through all
of them, timed per step, with an LSTM layer of the same sizes as the peer. As recur
does, the memory's projection is made once per round, not at every step.

    /usr/bin/python3 bench/attention_step_torch.py [iters]
RECUR_BENCH_THREADS (default 2) sets torch's thread count.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures"))
from generate_attention import Attention  # noqa: E402

B, S, H, T = 64, 30, 256, 30
THREADS = int(os.environ.get("RECUR_BENCH_THREADS", "2"))
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 10
torch.set_num_threads(THREADS)
torch.manual_seed(123)


def time_of(fn, per):
    """As bench/attention_step.lua: median, min (wall), cpu (process time), cost."""
    for _ in range(2):
        fn()
    times = []
    c0 = time.process_time()
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - c0) / iters
    times.sort()
    r = {"median": times[(iters + 1) // 2 - 1] / per, "min": times[0] / per, "cpu": cpu / per}
    r["cost"] = r["cpu"] if THREADS == 1 else r["min"]
    return r


def ms(r):
    return f"{r['median'] * 1e3:.3f} ms (min {r['min'] * 1e3:.3f}, cpu {r['cpu'] * 1e3:.3f})"


lstm = torch.nn.LSTM(H, H)
x, gy = torch.randn(T, B, H, requires_grad=True), torch.randn(T, B, H)


def lstm_round():
    y, _ = lstm(x)
    y.backward(gy)


lstm_step = time_of(lstm_round, T)

memory = torch.randn(S, B, H, requires_grad=True)
lengths = torch.tensor([S - b % 10 for b in range(B)])
queries = torch.randn(T, B, H, requires_grad=True)
gcontexts = torch.randn(T, B, H)

print(f"torch {torch.__version__} attention step B={B} S={S} H={H} float32, {THREADS} threads, "
      f"median of {iters} rounds of T={T} steps")
print(f"  peer: lstm layer step (B={B} D=H={H}) forward+backward {ms(lstm_step)}")
mask = torch.arange(S).unsqueeze(0) < lengths.unsqueeze(1)


def steps(attn, score):
    """The contexts of the T steps, the memory projected once."""
    m = memory.transpose(0, 1)  # (B,S,H)
    keys = m if score == "dot" else attn.memory_layer(m)
    cs = []
    for t in range(T):
        q = queries[t]
        if score in ("dot", "general"):
            e = torch.bmm(keys, q.unsqueeze(2)).squeeze(2)
        else:
            e = attn.v(torch.tanh(attn.query_layer(q).unsqueeze(1) + keys)).squeeze(2)
        a = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)
        cs.append(torch.bmm(a.unsqueeze(1), m).squeeze(1))
    return cs


for score in ("dot", "general", "concat", "additive"):
    attn = Attention(score, H, H, H)

    def train_round():
        torch.autograd.backward(steps(attn, score), list(gcontexts))

    def attend_round():
        with torch.no_grad():
            steps(attn, score)

    step = time_of(train_round, T)
    fwd = time_of(attend_round, T)
    print(f"  {score:8s} forward+backward {ms(step)} per step: {B / step['cost']:.0f} tokens/s, "
          f"{step['cost'] / lstm_step['cost']:.2f}x the lstm step")
    print(f"  {'':8s} attend (no tape)  {ms(fwd)} per step")
