#!/usr/bin/env python3
"""torch_anchor.py — the vendor's libraries on porta-bench's cases, through PyTorch.

    porta-bench --list [--op ...] [--transposes ...] > cases.txt
    python3 bench/torch_anchor.py cases.txt [--device cuda] [--min-time 0.3] [--json FILE]

Times every f32 matmul and attention case that porta-bench's listing names (so the suite
is defined once, in tools/porta_bench.cpp), with porta-bench's labels and flop counts
(bench/matmul_case.hpp, bench/attention_case.hpp), so each line sits beside porta's rate
for the same case. On a GPU, matmul is cuBLAS SGEMM with TF32 off (the f32 arithmetic
porta does); attention is scaled_dot_product_attention in f32, forward, and backward
alone (dQ, dK, dV from a saved forward). tools/gpu-check runs it after porta-bench on a
GPU machine whose image holds PyTorch; --device cpu times PyTorch's own cpu kernels
instead. A helper for comparisons only: porta never depends on it.
"""
import argparse
import json
import re
import sys
import time

import torch

# porta-bench --list lines: "matmul 4096x3072x768 nt f32 on opencl:0, porta",
# "attention B1 H12 N512 D64 causal f32 bwd on vulkan:0, unfused".
MATMUL_LINE = re.compile(r"^matmul (\d+)x(\d+)x(\d+) ([nt][nt]) f32 on ")
ATTENTION_LINE = re.compile(r"^attention B(\d+) H(\d+) N(\d+) D(\d+)( causal)? f32 (fwd|bwd) on ")


def listed_cases(lines):
    """The distinct matmul and attention cases of a porta-bench listing, in its order."""
    matmuls, attentions = {}, {}
    for line in lines:
        if match := MATMUL_LINE.match(line):
            m, n, k, transposes = match.groups()
            matmuls.setdefault((int(m), int(n), int(k), transposes))
        elif match := ATTENTION_LINE.match(line):
            batch, heads, n, d, causal, direction = match.groups()
            attentions.setdefault((int(batch), int(heads), int(n), int(d), causal is not None, direction))
    return list(matmuls), list(attentions)


def rate(call, flops, min_time, synchronize):
    """GFLOP/s of call over at least min_time seconds of calls after a first, untimed one."""
    call()
    synchronize()
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return flops * calls / elapsed / 1e9


def matmul_cases(shapes, device, min_time, synchronize):
    library = "cublas" if device.type == "cuda" else "torch"
    for m, n, k, t in shapes:
        # op(A) = A^T: A is stored k x m and read through a transposed view, as porta does.
        a = torch.randn((k, m) if t[0] == "t" else (m, k), device=device)
        b = torch.randn((n, k) if t[1] == "t" else (k, n), device=device)
        op_a = a.t() if t[0] == "t" else a
        op_b = b.t() if t[1] == "t" else b
        c = torch.empty((m, n), device=device)
        yield (f"{m}x{n}x{k} {t} f32", library,
               rate(lambda: torch.matmul(op_a, op_b, out=c), 2.0 * m * n * k, min_time, synchronize))


def attention_cases(cases, device, min_time, synchronize):
    for batch, heads, n, d, causal, direction in cases:
        q, k, v = (torch.randn((batch, heads, n, d), device=device, requires_grad=True) for _ in range(3))
        forward_flops = 4.0 * batch * heads * n * n * d * (0.5 if causal else 1.0)
        label = f"B{batch} H{heads} N{n} D{d}{' causal' if causal else ''} f32 {direction}"

        def forward():
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

        if direction == "fwd":
            with torch.no_grad():
                yield label, "torch-sdpa", rate(forward, forward_flops, min_time, synchronize)
            continue
        out = forward()
        grad = torch.randn_like(out)

        def backward():
            torch.autograd.grad(out, (q, k, v), grad, retain_graph=True)

        yield label, "torch-sdpa", rate(backward, 2.5 * forward_flops, min_time, synchronize)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", help="porta-bench --list's output (- for standard input)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--json")
    args = parser.parse_args()
    with sys.stdin if args.cases == "-" else open(args.cases) as file:
        matmuls, attentions = listed_cases(file)
    if not matmuls and not attentions:
        sys.exit(f"torch_anchor.py: {args.cases} lists no f32 matmul or attention case of porta-bench")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("torch_anchor.py: PyTorch sees no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {args.device} ({name}), GFLOP/s with porta-bench's cases and flop counts")
    results = []
    for op, cases in (("matmul", matmul_cases(matmuls, device, args.min_time, synchronize)),
                      ("attention", attention_cases(attentions, device, args.min_time, synchronize))):
        for label, implementation, gflops in cases:
            print(f"{op:9} {label:40} {implementation:10} {gflops:10.1f} GFLOP/s", flush=True)
            results.append({"op": op, "case": label, "implementation": implementation, "gflops": gflops})
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"torch": torch.__version__, "device": name, "results": results}, file, indent=1)


if __name__ == "__main__":
    main()
