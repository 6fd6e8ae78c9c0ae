"""Where the time of one recurrent layer's forward + backward goes, by phase, from
`perf record` samples (Debian's linux-perf; software cpu-clock sampling is enough,
so it works in a VM without hardware counters).

    /usr/bin/python3 bench/profile_layer.py --T 100 --B 64 --D 512 --H 512
        [--cell lstm] [--iters 8] [--threads 2] [--build /tmp/recur-prof]

It builds recur once more into --build with frame pointers and line tables
(`make BUILD=... CFLAGS="... -g -fno-omit-frame-pointer"`; the optimisation flags are
the Makefile's), runs forward + backward --iters times under `perf record -g`, and
sorts the samples by the function that took them and the call site it was called
from (addr2line, then the source line: W_hh or W_ih): recur's packed products, split into the
forward's input projection, the forward's per-step recurrent product, the backward's
per-step recurrent product (dh += dG W_hh) and input gradient (dx_t = dG_t W_ih);
OpenBLAS's sgemm (the weight gradients dW_ih, dW_hh over all T*B rows); the pointwise
gate passes; recur's blocked kernel over all T*B rows (the weight gradients, and
where the weights are large the input projection and dx); packing the weights; OpenMP's barriers; the kernel (page faults,
scheduling); the rest. Samples taken while the input is drawn are left out.
Percentages are of the samples of recur's process (CPU time, all threads), not of
wall-clock time.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = r"""
local root, build = os.getenv("PROF_ROOT"), os.getenv("PROF_BUILD")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = build .. "/?.so;" .. package.cpath
local recur = require "recur"
local cell, T, B, D, H, iters, threads = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]),
  tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7])
recur.set_num_threads(threads)
local m = recur.nn[({lstm = "LSTM", gru = "GRU", rnn = "RNN"})[cell]](D, H)
local x, gy = recur.randn(T, B, D), recur.randn(T, B, H)
m:forward(x); m:backward(x, gy); m:zero_grad()
local t0 = recur.now()
for _ = 1, iters do m:forward(x); m:backward(x, gy); m:zero_grad() end
io.stdout:write(string.format("%.1f\n", (recur.now() - t0) / iters * 1000))
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def classify(frames, lines):
    """The phase of one sample, from its call chain (leaf first)."""
    leaf_sym, leaf_dso = frames[0][1], frames[0][2]
    syms = [f[1] for f in frames]
    if any(s.startswith(("recur_rng", "l_randn")) for s in syms):
        return None
    if "openblas" in leaf_dso:
        return "weight-gradient GEMMs (OpenBLAS sgemm: dW_ih, dW_hh)"
    if leaf_sym.startswith(("bk_kernel", "b2_kernel", "rnn_gemm_blocked", "blocked_avx2")):
        # recur's blocked kernel: the products over all T*B rows
        for ip, sym, _ in frames:
            if sym.startswith("param_grads"):
                src = lines.get(ip, "")
                what = ("dW_ih and dW_hh (one packing of dG^T)" if "pair" in src else "dW_hh" if "dw_hh" in src
                        else "dW_ih" if "dw_ih" in src else "dx" if "dx" in src else src)
                return "backward: %s over all T*B rows (blocked)" % what
        if any(s.startswith("gemm_rows") for s in syms):
            return "input projection (forward) or dx over all T*B rows, parallel (blocked)"
        return "blocked product, caller unknown"
    if leaf_sym.startswith(("panel_avx", "kernel_avx", "rnn_gemm_packed")):
        for i, (ip, sym, _) in enumerate(frames):
            via_step = any(s.startswith("step_gemm") for s in syms[:i])
            if sym.startswith("forward_rows"):
                return ("forward: recurrent product per step (packed)" if via_step
                        else "forward: input projection (packed)")
            if sym.startswith("backward_rows"):
                src = lines.get(ip, "")
                if "whh" in src:
                    return "backward: recurrent product per step, dh += dG W_hh (packed)"
                if "wih" in src:
                    return "backward: input gradient per step, dx_t = dG_t W_ih (packed)"
                return "backward: packed product at " + src
        return "packed product, caller unknown"
    if leaf_sym.startswith("rnn_gemm_pack"):
        return "packing the weights"
    if "_row_f" in leaf_sym or "pointwise" in leaf_sym:
        return "pointwise gate passes"
    if "colsum" in leaf_sym or "sum_windows" in leaf_sym:
        return "bias gradients (column sums)"
    if "libgomp" in leaf_dso:
        return "OpenMP (barriers, waiting)"
    if "kernel" in leaf_dso:
        return "kernel (page faults, scheduling)"
    if "libc" in leaf_dso:
        return "libc: " + leaf_sym.split("@")[0]
    return "other"


def main():
    p = argparse.ArgumentParser(prog="profile_layer.py")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    for k in ("T", "B", "D", "H"):
        p.add_argument("--" + k, type=int, required=True)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--build", default=os.path.join(tempfile.gettempdir(), "recur-prof"))
    a = p.parse_args()

    flags = "-O3 -march=x86-64-v2 -ffp-contract=off -fno-math-errno -g -fno-omit-frame-pointer"
    run(["make", "-C", ROOT, "-j2", "BUILD=" + a.build, "CFLAGS=" + flags, a.build + "/recur/core.so"])
    so = os.path.join(a.build, "recur", "core.so")
    data = os.path.join(a.build, "perf.data")
    env = dict(os.environ, PROF_ROOT=ROOT, PROF_BUILD=a.build)
    driver = os.path.join(a.build, "profile_driver.lua")
    with open(driver, "w") as f:
        f.write(DRIVER)
    ms = run(["perf", "record", "-q", "-F", "1999", "-g", "-o", data, "lua5.4", driver, a.cell,
              str(a.T), str(a.B), str(a.D), str(a.H), str(a.iters), str(a.threads)], env=env).strip()
    script = run(["perf", "script", "-i", data, "-F", "tid,ip,sym,dso"])
    samples = []
    for block in script.split("\n\n"):
        frames = []
        for line in block.strip().split("\n")[1:]:
            m = re.match(r"\s*([0-9a-f]+) (.*?) \((.*)\)$", line)
            if m:
                frames.append((int(m.group(1), 16), m.group(2), m.group(3)))
        if frames:
            samples.append(frames)
    # the call sites inside backward_rows, as the source lines they are on
    sites = sorted({ip for f in samples for ip, sym, dso in f
                    if sym.startswith(("backward_rows", "param_grads")) and dso.endswith("core.so")})
    lines = {}
    if sites:
        out = run(["addr2line", "-e", so] + [hex(ip - 1) for ip in sites]).split("\n")
        for ip, where in zip(sites, out):
            m = re.match(r"(.*):(\d+)", where)
            try:
                with open(m.group(1)) as f:
                    lines[ip] = f.read().split("\n")[int(m.group(2)) - 1].strip()
            except (AttributeError, OSError, IndexError, ValueError):
                lines[ip] = where
    counts = collections.Counter(c for c in (classify(f, lines) for f in samples) if c)
    total = sum(counts.values())
    print("%s (%d,%d,%d,%d), %d threads: %s ms per forward + backward under perf; %d samples"
          % (a.cell, a.T, a.B, a.D, a.H, a.threads, ms, total))
    for what, n in counts.most_common():
        if 100.0 * n / total >= 0.2:
            print("%6.1f%%  %s" % (100.0 * n / total, what))


if __name__ == "__main__":
    sys.exit(main())
