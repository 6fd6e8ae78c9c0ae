"""torch.nn.LSTM, one layer, forward + backward, float32: T=100, B=64, D=H=512 on 2
threads, measured like bench/lstm_layer.lua (median wall-clock over the iterations
after two warm-up calls). GFLOP/s counts 2*M*N*K per GEMM of the same computation.

    /usr/bin/python3 bench/lstm_layer_torch.py [iters]
"""
import os
import sys
import time

THREADS = int(os.environ.get("RECUR_BENCH_THREADS", "2"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import torch  # noqa: E402 (thread counts must be set before it loads)

T, B, D, H, G = 100, 64, 512, 512, 4


def main():
    iters = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    torch.set_num_threads(THREADS)
    torch.manual_seed(123)
    lstm = torch.nn.LSTM(D, H)
    x = torch.randn(T, B, D, requires_grad=True)
    gy = torch.randn(T, B, H)

    def fwd_bwd():
        lstm.zero_grad(set_to_none=False)
        x.grad = None
        y, _ = lstm(x)
        y.backward(gy)

    flops = 3 * (2 * T * B * G * H * D + 2 * T * B * G * H * H)
    for _ in range(2):
        fwd_bwd()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fwd_bwd()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[(iters - 1) // 2]
    print("torch %s lstm layer T=%d B=%d D=%d H=%d float32, %d threads, %d iters"
          % (torch.__version__, T, B, D, H, THREADS, iters))
    print("forward+backward: %.1f ms (median; min %.1f ms), %.1f GFLOP/s"
          % (median * 1e3, times[0] * 1e3, flops / median / 1e9))


if __name__ == "__main__":
    main()
