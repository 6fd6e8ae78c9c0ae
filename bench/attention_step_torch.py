"""PyTorch's side of bench/attention_step.lua: the attention step of
spec/fixtures/generate_attention.py (the reference module of recur.nn.Attention),
float32, B=64, S=30, H=256, T=30 steps forward, then backward through all of them,
timed per step, with an LSTM layer of the same sizes as the peer.

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


def median_time(fn):
    for _ in range(2):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[(iters + 1) // 2 - 1]


lstm = torch.nn.LSTM(H, H)
x, gy = torch.randn(T, B, H, requires_grad=True), torch.randn(T, B, H)


def lstm_round():
    y, _ = lstm(x)
    y.backward(gy)


lstm_step = median_time(lstm_round) / T

memory = torch.randn(S, B, H, requires_grad=True)
lengths = torch.tensor([S - b % 10 for b in range(B)])
queries = torch.randn(T, B, H, requires_grad=True)
gcontexts = torch.randn(T, B, H)

print(f"torch {torch.__version__} attention step B={B} S={S} H={H} float32, {THREADS} threads, "
      f"median of {iters} rounds of T={T} steps")
print(f"  peer: lstm layer step (B={B} D=H={H}) forward+backward {lstm_step * 1e3:.3f} ms")
for score in ("dot", "general", "concat", "additive"):
    attn = Attention(score, H, H, H)

    def train_round():
        cs = [attn(queries[t], memory, lengths)[0] for t in range(T)]
        torch.autograd.backward(cs, list(gcontexts))

    def attend_round():
        with torch.no_grad():
            for t in range(T):
                attn(queries[t], memory, lengths)

    step = median_time(train_round) / T
    fwd = median_time(attend_round) / T
    print(f"  {score:8s} forward+backward {step * 1e3:.3f} ms/step ({B / step:.0f} tokens/s, "
          f"{step / lstm_step:.2f}x the lstm step); attend {fwd * 1e3:.3f} ms/step")
