"""The PyTorch side of the language-model race (bench/race.lua): char-rnn's default
model on tiny Shakespeare trained for a fixed wall time, printing the validation
loss against training time as JSON lines.

    /usr/bin/python3 bench/lm_race_torch.py --seconds 300 [--eval-every 15] [--threads 2]

The same setup as bench/lm_race.lua: vocabulary = the sorted characters of the whole
text, the last 5% is the validation split, 2-layer LSTM of 128 with embedding 64, no
dropout, batch 50 x sequence 50 in recur.data.LMBatcher's layout (B parallel streams,
hidden state carried from chunk to chunk and reset each epoch, last chunk of an epoch
shorter), Adam 2e-3, gradient norm clipped at 5, no learning-rate decay.
Training time excludes evaluation: the clock stops while the whole validation split
is evaluated (every --eval-every seconds of training, and at the end).
One line per evaluation: {"side": "torch", "seconds": training seconds, "iter": ...,
"val_loss": nats per character, "train_loss": ...}, then a "final" line.
"""
import argparse
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

p = argparse.ArgumentParser(prog="lm_race_torch.py")
p.add_argument("--seconds", type=float, default=300)
p.add_argument("--eval-every", type=float, default=15, help="seconds of training between evaluations")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=123)
p.add_argument("--data", default=os.path.join(ROOT, "data", "tinyshakespeare.txt"))
p.add_argument("--batch", type=int, default=50)
p.add_argument("--seq", type=int, default=50)
p.add_argument("--hidden", type=int, default=128)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--embed", type=int, default=64)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--clip", type=float, default=5)
p.add_argument("--val-frac", type=float, default=0.05)
ARGS = p.parse_args()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(ARGS.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.manual_seed(ARGS.seed)


class CharLM(nn.Module):
    def __init__(self, V, E, H, L):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, num_layers=L)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, state=None):
        y, state = self.rnn(self.encoder(x), state)
        return self.decoder(y), state


class Batcher:
    """recur.data.LMBatcher's layout: N ids -> B streams of L = (N-1)//B positions;
    stream b reads ids[b*L .. b*L+L-1], targets one further on; chunks of T in order,
    the last one shorter."""

    def __init__(self, ids, B, T):
        L = (ids.numel() - 1) // B
        self.x = ids[: B * L].view(B, L).t().contiguous()       # (L,B)
        self.y = ids[1: B * L + 1].view(B, L).t().contiguous()  # (L,B)
        self.T, self.L, self.B = T, L, B
        self.K = (L + T - 1) // T

    def chunk(self, k):
        s = k * self.T
        return self.x[s: s + self.T], self.y[s: s + self.T]


def evaluate(model, batcher, V):
    model.eval()
    total, tokens, state = 0.0, 0, None
    with torch.no_grad():
        for k in range(batcher.K):
            x, y = batcher.chunk(k)
            logits, state = model(x, state)
            total += float(F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="sum"))
            tokens += y.numel()
    model.train()
    return total / tokens


def main():
    with open(ARGS.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    V = len(chars)
    n_val = int(len(text) * ARGS.val_frac)
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    train_ids, val_ids = ids[: len(text) - n_val], ids[len(text) - n_val:]
    B, T = ARGS.batch, ARGS.seq
    train = Batcher(train_ids, B, T)
    val = Batcher(val_ids, max(1, min(B, (val_ids.numel() - 1) // T)), T)

    model = CharLM(V, ARGS.embed, ARGS.hidden, ARGS.layers)
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr)

    def record(**kw):
        kw["side"] = "torch"
        print(json.dumps(kw), flush=True)

    record(event="start", vocab=V, train_tokens=train_ids.numel(), val_tokens=val_ids.numel(),
           batches_per_epoch=train.K, parameters=sum(p.numel() for p in model.parameters()),
           torch_version=torch.__version__, threads=ARGS.threads)
    record(seconds=0.0, iter=0, epoch=1, val_loss=evaluate(model, val, V), train_loss=None)
    trained, it, epoch, k, state = 0.0, 0, 1, 0, None
    next_eval, smoothed, eval_seconds = ARGS.eval_every, None, 0.0
    while trained < ARGS.seconds:
        t0 = time.perf_counter()
        if k == train.K:
            k, epoch, state = 0, epoch + 1, None
        x, y = train.chunk(k)
        k += 1
        opt.zero_grad(set_to_none=False)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), ARGS.clip)
        opt.step()
        state = tuple(s.detach() for s in state)
        it += 1
        lv = float(loss)
        smoothed = lv if smoothed is None else 0.95 * smoothed + 0.05 * lv
        trained += time.perf_counter() - t0
        if trained >= next_eval or trained >= ARGS.seconds:
            e0 = time.perf_counter()
            vl = evaluate(model, val, V)
            eval_seconds += time.perf_counter() - e0
            record(seconds=trained, iter=it, epoch=epoch, val_loss=vl, train_loss=smoothed)
            while next_eval <= trained:
                next_eval += ARGS.eval_every
    record(event="final", seconds=trained, iter=it, epoch=epoch, val_loss=vl, train_loss=smoothed,
           ms_per_iter=trained / it * 1000, eval_seconds=eval_seconds,
           peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


if __name__ == "__main__":
    sys.exit(main())
