"""The PyTorch side of recur's benchmark suite: the rows of bench/run.lua, measured
the same way with PyTorch's own modules (no torch.jit), one JSON line per call.

    /usr/bin/python3 bench/peer_torch.py protocol --layers 2 --hidden 256 [--iters 30]
    /usr/bin/python3 bench/peer_torch.py layer --cell lstm --T 100 --B 64 --D 512 --H 512
    /usr/bin/python3 bench/peer_torch.py generate --layers 2 --hidden 512 --tokens 2000
    /usr/bin/python3 bench/peer_torch.py wordlm [--iters 10]

--threads N (default 2) sets torch.set_num_threads and, before torch loads, the
OpenMP and OpenBLAS thread counts. Timings are wall-clock medians over the measured
iterations (warm-up excluded); peak_rss_mb is the process's peak resident memory,
so each row runs in its own process. The field names match bench/run.lua's.
"""
import argparse
import ctypes
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="peer_torch.py")
    sub = p.add_subparsers(dest="row", required=True)

    def common(sp):
        sp.add_argument("--threads", type=int, default=2)
        sp.add_argument("--warmup", type=int, default=None)
        sp.add_argument("--seed", type=int, default=123)

    sp = sub.add_parser("protocol")
    common(sp)
    sp.add_argument("--layers", type=int, required=True)
    sp.add_argument("--hidden", type=int, required=True)
    sp.add_argument("--iters", type=int, default=30)
    sp.add_argument("--batch", type=int, default=50)
    sp.add_argument("--seq", type=int, default=50)
    sp.add_argument("--embed", type=int, default=64)
    sp.add_argument("--data", default=os.path.join(ROOT, "data", "tinyshakespeare.txt"))

    sp = sub.add_parser("layer")
    common(sp)
    sp.add_argument("--cell", choices=["lstm", "gru", "rnn"], required=True)
    for k in ("T", "B", "D", "H"):
        sp.add_argument("--" + k, type=int, required=True)
    sp.add_argument("--iters", type=int, default=5)
    sp.add_argument("--mode", choices=["train", "infer"], default="train")
    sp.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")

    sp = sub.add_parser("generate")
    common(sp)
    sp.add_argument("--layers", type=int, default=2)
    sp.add_argument("--hidden", type=int, default=512)
    sp.add_argument("--embed", type=int, default=64)
    sp.add_argument("--vocab", type=int, default=65)
    sp.add_argument("--tokens", type=int, default=2000)
    sp.add_argument("--greedy", action="store_true", help="argmax instead of sampling at temperature 1")
    sp.add_argument("--dtype", choices=["float32", "bfloat16", "int8"], default="float32")

    # Zaremba et al.'s medium PTB model (bench/suite.lua's suite.WORDLM)
    sp = sub.add_parser("wordlm")
    common(sp)
    sp.add_argument("--layers", type=int, default=2)
    sp.add_argument("--hidden", type=int, default=650)
    sp.add_argument("--vocab", type=int, default=10000)
    sp.add_argument("--batch", type=int, default=20)
    sp.add_argument("--seq", type=int, default=35)
    sp.add_argument("--dropout", type=float, default=0.5)
    sp.add_argument("--lr", type=float, default=1.0)
    sp.add_argument("--clip", type=float, default=5.0)
    sp.add_argument("--iters", type=int, default=10)
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:])
# The thread pools read these when the libraries load, so they go before `import torch`.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(ARGS.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.manual_seed(ARGS.seed)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def openblas_core():
    """The kernel family of the OpenBLAS this process loaded (PyTorch's BLAS), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libopenblas" in line}
        for path in paths:
            get = ctypes.CDLL(path).openblas_get_corename
            get.restype = ctypes.c_char_p
            return get().decode()
    except (OSError, AttributeError):
        pass
    return None


def emit(row):
    row["impl"] = "torch"
    row["blas_core"] = openblas_core()
    row["torch_version"] = torch.__version__
    row["threads"] = ARGS.threads
    row["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(row), flush=True)


class CharLM(nn.Module):
    """Embedding(V,E) -> LSTM(E,H,L) -> Linear(H,V): torch-rnn's model without dropout."""

    def __init__(self, V, E, H, L):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, num_layers=L)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, state=None):
        # x (T,B) -> logits (T,B,V)
        y, state = self.rnn(self.encoder(x), state)
        return self.decoder(y), state


def char_stream(path, B, T):
    """Tiny Shakespeare as ids 0..V-1 in B parallel streams, (L,B) time-major, as
    recur.data.LMBatcher lays it out; returns inputs, targets and V."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    L = (ids.numel() - 1) // B
    x = ids[: B * L].view(B, L).t().contiguous()
    y = ids[1: B * L + 1].view(B, L).t().contiguous()
    return x, y, len(chars)


def row_protocol(a):
    # torch-rnn's benchmark: batch 50, sequence 50, embedding 64, no dropout, char LM on
    # tiny Shakespeare; one iteration = forward, backward, clip 5, Adam.
    B, T = a.batch, a.seq
    xs, ys, V = char_stream(a.data, B, T)
    K = xs.size(0) // T
    model = CharLM(V, a.embed, a.hidden, a.layers)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    warmup = 5 if a.warmup is None else a.warmup
    state, times, loss = None, [], None
    for i in range(warmup + a.iters):
        k = i % K
        x, y = xs[k * T:(k + 1) * T], ys[k * T:(k + 1) * T]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        state = tuple(s.detach() for s in state)
        t1 = time.perf_counter()
        if i >= warmup:
            times.append((t1 - t0) * 1000.0)
    emit({"row": "protocol", "layers": a.layers, "hidden": a.hidden, "batch": B, "seq": T,
          "embed": a.embed, "vocab": V, "iters": a.iters, "warmup": warmup,
          "ms_per_iter": median(times), "ms_mean": sum(times) / len(times), "ms_min": min(times),
          "final_loss": float(loss)})


def layer_gemms(T, B, D, H, G, mode="train"):
    """The layer's GEMMs as (M, N, K, trans_a, trans_b, count), forward then backward,
    as a fused kernel does them: input projection for all steps, one recurrent product
    per step; backward the recurrent product per step, then dx, dW_ih, dW_hh each as
    one GEMM over all T*B rows. mode "infer": the forward two."""
    GH = G * H
    gemms = [
        (T * B, GH, D, False, True, 1),   # x (TB,D) @ W_ih^T (D,GH)
        (B, GH, H, False, True, T),       # h_{t-1} (B,H) @ W_hh^T (H,GH)
        (B, H, GH, False, False, T),      # dG_t (B,GH) @ W_hh (GH,H)
        (T * B, D, GH, False, False, 1),  # dx = dG (TB,GH) @ W_ih (GH,D)
        (GH, D, T * B, True, False, 1),   # dW_ih += dG^T (GH,TB) @ x (TB,D)
        (GH, H, T * B, True, False, 1),   # dW_hh += dG^T (GH,TB) @ h (TB,H)
    ]
    return gemms[:2] if mode == "infer" else gemms


def sgemm_set(T, B, D, H, G, mode="train"):
    """The layer's GEMMs on random operands through torch.mm (OpenBLAS): a function
    that runs them all once, and their total flops."""
    ops = []
    for M, N, K, ta, tb, count in layer_gemms(T, B, D, H, G, mode):
        a = torch.randn(K, count * M) if ta else torch.randn(count * M, K)
        b = torch.randn(N, K) if tb else torch.randn(K, N)
        c = torch.empty(count * M, N)
        steps = []
        for s in range(count):
            a_s = a[:, s * M:(s + 1) * M].t() if ta else a[s * M:(s + 1) * M]
            steps.append((a_s, c[s * M:(s + 1) * M]))
        ops.append((b.t() if tb else b, steps))

    def once():
        for b, steps in ops:
            for a_s, c_s in steps:
                torch.mm(a_s, b, out=c_s)

    return once, sum(2.0 * M * N * K * count for M, N, K, _, _, count in layer_gemms(T, B, D, H, G, mode))


def row_layer(a):
    # the layer's forward + backward (--mode infer: forward alone under no_grad) and its
    # GEMMs alone are timed alternately, so that a change in the shared machine's load
    # falls on both; --dtype bfloat16 runs the module and its input in bf16
    T, B, D, H = a.T, a.B, a.D, a.H
    cls, G = {"lstm": (nn.LSTM, 4), "gru": (nn.GRU, 3), "rnn": (nn.RNN, 1)}[a.cell]
    train = a.mode == "train"
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[a.dtype]
    m = cls(D, H).to(dtype)
    x = torch.randn(T, B, D, requires_grad=train).to(dtype)
    gy = torch.randn(T, B, H).to(dtype)
    gemms, flops = sgemm_set(T, B, D, H, G, a.mode)
    forward = 2.0 * T * B * D * G * H + 2.0 * T * B * H * G * H
    assert abs(flops - (3 * forward if train else forward)) < 1e-6 * flops
    warmup = 5 if a.warmup is None else a.warmup
    times, gemm_times = [], []
    try:
        for i in range(warmup + a.iters):
            t0 = time.perf_counter()
            if train:
                y, _ = m(x)
                y.backward(gy)
            else:
                with torch.no_grad():
                    y, _ = m(x)
            t1 = time.perf_counter()
            x.grad = None
            m.zero_grad(set_to_none=False)
            t2 = time.perf_counter()
            gemms()
            t3 = time.perf_counter()
            if i >= warmup:
                times.append(t1 - t0)
                gemm_times.append(t3 - t2)
    except RuntimeError as e:  # a dtype this build has no kernel for
        emit({"row": "layer", "cell": a.cell, "mode": a.mode, "dtype": a.dtype, "T": T, "B": B, "D": D, "H": H,
              "unsupported": str(e).splitlines()[0]})
        return
    s = median(times)
    gflops, sgemm = flops / s / 1e9, flops / median(gemm_times) / 1e9
    emit({"row": "layer", "cell": a.cell, "mode": a.mode, "dtype": a.dtype, "T": T, "B": B, "D": D, "H": H,
          "iters": a.iters, "ms": s * 1000.0, "ms_min": min(times) * 1000.0, "gflops": gflops,
          "sgemm_ms": median(gemm_times) * 1000.0, "sgemm_gflops": sgemm, "fraction_of_sgemm": gflops / sgemm})


class WordLM(nn.Module):
    """Zaremba et al. (2014) medium, as PyTorch's word_language_model builds it:
    Embedding(V,H) -> dropout -> LSTM(H,H,L, dropout between layers) -> dropout -> Linear(H,V)."""

    def __init__(self, V, H, L, p):
        super().__init__()
        self.drop = nn.Dropout(p)
        self.encoder = nn.Embedding(V, H)
        self.rnn = nn.LSTM(H, H, num_layers=L, dropout=p)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, state=None):
        y, state = self.rnn(self.drop(self.encoder(x)), state)
        return self.decoder(self.drop(y)), state


def row_wordlm(a):
    # one iteration = zero_grad, forward, cross-entropy, backward, clip, SGD, on
    # synthetic ids uniform over the vocabulary; the state is carried (detached)
    B, T, V = a.batch, a.seq, a.vocab
    model = WordLM(V, a.hidden, a.layers, a.dropout).train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    warmup = 5 if a.warmup is None else a.warmup
    state, times, loss = None, [], None
    for i in range(warmup + a.iters):
        x, y = torch.randint(0, V, (T, B)), torch.randint(0, V, (T, B))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        state = tuple(s.detach() for s in state)
        t1 = time.perf_counter()
        if i >= warmup:
            times.append((t1 - t0) * 1000.0)
    ms = median(times)
    emit({"row": "wordlm", "layers": a.layers, "hidden": a.hidden, "vocab": V, "batch": B, "seq": T,
          "dropout": a.dropout, "iters": a.iters, "warmup": warmup, "ms_per_iter": ms,
          "ms_mean": sum(times) / len(times), "ms_min": min(times), "tokens_per_s": B * T / (ms / 1000.0),
          "final_loss": float(loss)})


def row_generate(a):
    model = CharLM(a.vocab, a.embed, a.hidden, a.layers).eval()
    if a.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    elif a.dtype == "int8":
        # PyTorch's own int8 path for recurrent models: dynamic quantization of the LSTM
        # and the output layer (int8 weights, activations quantized per call)
        model = torch.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8)
    warmup = 20 if a.warmup is None else a.warmup
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        token = torch.zeros(1, 1, dtype=torch.long)
        state = None
        for i in range(warmup + a.tokens):
            if i == warmup:
                t0 = time.perf_counter()
            logits, state = model(token, state)
            scores = logits[0, 0].float()
            if a.greedy:
                nxt = int(torch.argmax(scores))
            else:
                nxt = int(torch.multinomial(F.softmax(scores, dim=0), 1, generator=g))
            token[0, 0] = nxt
        seconds = time.perf_counter() - t0
    emit({"row": "generate", "layers": a.layers, "hidden": a.hidden, "embed": a.embed, "vocab": a.vocab,
          "dtype": a.dtype, "tokens": a.tokens, "greedy": a.greedy, "seconds": seconds, "tokens_per_s": a.tokens / seconds,
          "us_per_token": seconds / a.tokens * 1e6})


{"protocol": row_protocol, "layer": row_layer, "generate": row_generate, "wordlm": row_wordlm}[ARGS.row](ARGS)
