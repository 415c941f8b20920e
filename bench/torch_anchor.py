#!/usr/bin/env python3
"""torch_anchor.py — the vendor's libraries on porta-bench's standard suite, through PyTorch.

    python3 bench/torch_anchor.py [--device cuda] [--transposes nn,nt,tn,tt] [--min-time 0.3] [--json FILE]

On a GPU, matmul is cuBLAS SGEMM with TF32 off (the f32 arithmetic porta does); attention is
scaled_dot_product_attention in f32, forward, and backward alone (dQ, dK, dV from a saved
forward). Case labels and flop counts are porta-bench's, so each line sits beside porta's
rate for the same case: tools/gpu-check runs it after porta-bench on a GPU machine whose
image holds PyTorch; --device cpu times PyTorch's own cpu kernels instead. A helper for
comparisons only: porta never depends on it.
"""
import argparse
import json
import sys
import time

import torch

MATMUL_SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
                 (4096, 3072, 768), (4096, 768, 3072), (4096, 2304, 768)]
ATTENTION_LENGTHS = [512, 1024, 2048, 4096]


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


def matmul_cases(device, transposes, min_time, synchronize):
    library = "cublas" if device.type == "cuda" else "torch"
    for m, n, k in MATMUL_SHAPES:
        for t in transposes:
            # op(A) = A^T: A is stored k x m and read through a transposed view, as porta does.
            a = torch.randn((k, m) if t[0] == "t" else (m, k), device=device)
            b = torch.randn((n, k) if t[1] == "t" else (k, n), device=device)
            op_a = a.t() if t[0] == "t" else a
            op_b = b.t() if t[1] == "t" else b
            c = torch.empty((m, n), device=device)
            yield (f"{m}x{n}x{k} {t} f32", library,
                   rate(lambda: torch.matmul(op_a, op_b, out=c), 2.0 * m * n * k, min_time, synchronize))


def attention_cases(device, min_time, synchronize):
    heads, d = 12, 64
    for n in ATTENTION_LENGTHS:
        for causal in (False, True):
            q, k, v = (torch.randn((1, heads, n, d), device=device, requires_grad=True) for _ in range(3))
            forward_flops = 4.0 * heads * n * n * d * (0.5 if causal else 1.0)
            label = f"B1 H{heads} N{n} D{d}{' causal' if causal else ''} f32"

            def forward():
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

            with torch.no_grad():
                forward_rate = rate(forward, forward_flops, min_time, synchronize)
            yield f"{label} fwd", "torch-sdpa", forward_rate
            out = forward()
            grad = torch.randn_like(out)

            def backward():
                torch.autograd.grad(out, (q, k, v), grad, retain_graph=True)

            yield f"{label} bwd", "torch-sdpa", rate(backward, 2.5 * forward_flops, min_time, synchronize)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--transposes", default="nn,nt,tn,tt")
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--json")
    args = parser.parse_args()
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
    transposes = [t for t in args.transposes.split(",") if t]
    for op, cases in (("matmul", matmul_cases(device, transposes, args.min_time, synchronize)),
                      ("attention", attention_cases(device, args.min_time, synchronize))):
        for label, implementation, gflops in cases:
            print(f"{op:9} {label:40} {implementation:10} {gflops:10.1f} GFLOP/s", flush=True)
            results.append({"op": op, "case": label, "implementation": implementation, "gflops": gflops})
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"torch": torch.__version__, "device": name, "results": results}, file, indent=1)


if __name__ == "__main__":
    main()
