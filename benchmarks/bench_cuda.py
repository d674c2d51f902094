"""gradsmith's CUDA kernels against cuBLAS and PyTorch on the same GPU, in one run.

    python benchmarks/bench_cuda.py [--repeats 5] [--sizes 1024,2048,4096,8192]

Prints, for each case, gradsmith's figure, the peer's, and their ratio (medians
of interleaved runs, timed with a device synchronization on both sides):
  * float32 GEMM TFLOP/s at 1024..8192 against torch.matmul (cuBLAS) with TF32
    off, so both compute in plain float32;
  * the same with TF32 (torch with allow_tf32) and BF16 (gradsmith rounds its
    float32 operands; torch multiplies bfloat16 tensors), both summing in
    float32;
  * the fused Adam update over 10M and 50M parameters, as effective GB/s
    (28 bytes a parameter), against a device-to-device copy and against
    torch.optim.Adam(fused=True);
  * training throughput (samples/s) of model.fit on the GPU against a PyTorch
    loop on the same GPU with its data already there (fused Adam): the seed
    MLP 20-128-64-1 at batch 32, and 784-1024-1024-10 at batch 128;
  * the seed CNN's second convolution (32 images 74x74x32 -> 72x72x64, 3x3,
    relu) forward and backward, as TFLOP/s, against torch's conv2d (cuDNN,
    channels last, TF32 off), and 2x2 max pooling of its output forward and
    backward, as GB/s, against torch's max_pool2d.
Needs a CUDA device and PyTorch built with CUDA; without them it says so and
exits 0.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import gradsmith
from gradsmith import _core, cuda, ops


def timed(fn, sync):
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def interleave(ours, theirs, sync, repeats):
    ours(), theirs()  # warm up: first launches, allocator, cuBLAS handles
    a, b = [], []
    for _ in range(repeats):
        a.append(timed(ours, sync))
        b.append(timed(theirs, sync))
    return statistics.median(a), statistics.median(b)


def row(case, unit, ours, peer, theirs):
    print(f"{case:<24} {unit:<8} {ours:>10.2f}  {peer:<20} {theirs:>10.2f}  {ours / theirs:5.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", default="1024,2048,4096,8192")
    args = p.parse_args(argv)
    if not cuda.is_available():
        print(f"no CUDA device: {cuda.unavailable_reason()}")
        return 0
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare with")
        return 0
    if not torch.cuda.is_available():
        print("PyTorch has no CUDA here: nothing to compare with")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    sync = torch.cuda.synchronize
    print(f"gradsmith {gradsmith.__version__} on {cuda.get_device_name(0)}; torch {torch.__version__}")
    print(f"{'case':<24} {'unit':<8} {'gradsmith':>10}  {'peer':<20} {'peer fig':>10}  ratio")
    rng = np.random.default_rng(0)
    for n in (int(s) for s in args.sizes.split(",")):
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        da, db, dc = cuda.DeviceArray.from_numpy(a), cuda.DeviceArray.from_numpy(b), cuda.DeviceArray([n, n])
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        tc = torch.empty((n, n), device="cuda")
        ours, theirs = interleave(lambda: _core.cuda_gemm(da, db, dc, False, False, 1.0, 0.0),
                                  lambda: torch.matmul(ta, tb, out=tc), sync, args.repeats)
        flops = 2.0 * n ** 3
        row(f"gemm fp32 {n}^3", "TFLOP/s", flops / ours / 1e12, "cuBLAS (torch)", flops / theirs / 1e12)
        for name in ("tf32", "bf16"):
            gradsmith.config.set_matmul_precision(name)
            if not _core.cuda_matmul_uses_tensor_cores():
                gradsmith.config.set_matmul_precision("highest")
                continue
            torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
            pa, pb = (ta, tb) if name == "tf32" else (ta.bfloat16(), tb.bfloat16())
            pc = tc if name == "tf32" else torch.empty((n, n), device="cuda", dtype=torch.bfloat16)
            ours, theirs = interleave(lambda: _core.cuda_gemm(da, db, dc, False, False, 1.0, 0.0),
                                      lambda: torch.matmul(pa, pb, out=pc), sync, args.repeats)
            row(f"gemm {name} {n}^3", "TFLOP/s", flops / ours / 1e12, "cuBLAS (torch)", flops / theirs / 1e12)
            torch.backends.cuda.matmul.allow_tf32 = False
            gradsmith.config.set_matmul_precision("highest")
    for n in (10_000_000, 50_000_000):
        w, g, m, v = (cuda.DeviceArray.from_numpy(rng.standard_normal(n, dtype=np.float32)) for _ in range(4))
        copy_src, copy_dst = torch.empty(n * 7, device="cuda"), torch.empty(n * 7, device="cuda")
        alpha = 1e-3 * np.sqrt(1 - 0.999 ** 3) / (1 - 0.9 ** 3)
        params = [torch.nn.Parameter(torch.randn(n, device="cuda"))]
        params[0].grad = torch.randn(n, device="cuda")
        opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7, fused=True)
        step = lambda: _core.cuda_optimizer_step(1, w, g, m, v, None, 1e-3, 0.0, alpha, 0.1, 0.001, 1e-7,  # noqa: E731
                                                 False, 0.0)
        ours, theirs = interleave(step, opt.step, sync, args.repeats)
        nbytes = 28.0 * n
        row(f"adam {n // 1_000_000}M", "GB/s", nbytes / ours / 1e9, "torch fused Adam", nbytes / theirs / 1e9)
        _, copy = interleave(step, lambda: copy_dst.copy_(copy_src), sync, args.repeats)
        row(f"adam {n // 1_000_000}M", "GB/s", nbytes / ours / 1e9, "device copy (28 B/p)", 2 * 4 * 7 * n / copy / 1e9)
        del w, g, m, v
        cuda.empty_cache()
    conv_and_pool(torch, rng, args.repeats)
    for sizes, batch, n, epochs in (((20, 128, 64, 1), 32, 8000, 3), ((784, 1024, 1024, 10), 128, 16384, 2)):
        ours, theirs = train_throughput(torch, sizes, batch, n, epochs, args.repeats)
        name = "-".join(map(str, sizes))
        row(f"fit {name} b{batch}", "samples/s", ours, "torch loop (GPU)", theirs)
    return 0


def conv_and_pool(torch, rng, repeats):
    """The seed CNN's second convolution and a 2x2 max pooling, forward and backward, against torch (cuDNN)."""
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize
    n, h, w, c, f, k = 32, 74, 74, 32, 64, 3
    x = rng.standard_normal((n, h, w, c), dtype=np.float32)
    kernel = (rng.standard_normal((k, k, c, f), dtype=np.float32) / np.sqrt(k * k * c)).astype(np.float32)
    bias = rng.standard_normal(f, dtype=np.float32)
    oh, ow = h - k + 1, w - k + 1
    dy = rng.standard_normal((n, oh, ow, f), dtype=np.float32)
    dev = cuda.DeviceArray.from_numpy
    dx_, dk_, db_, ddy = dev(x), dev(kernel), dev(bias), dev(dy)
    y, z = cuda.DeviceArray([n, oh, ow, f]), cuda.DeviceArray([n, oh, ow, f])
    gx, gk, gb = cuda.DeviceArray([n, h, w, c]), cuda.DeviceArray([k, k, c, f]), cuda.DeviceArray([f])
    relu = ops._activation("relu", 0.2, 1.0, False)[0]

    def ours():
        _core.cuda_conv2d_forward(dx_, dk_, db_, y, z, relu, 0.0, [1, 1], [1, 1], 0)
        _core.cuda_conv2d_backward(ddy, dx_, dk_, z, relu, 0.0, [1, 1], [1, 1], 0, gx, gk, gb)

    tx = torch.from_numpy(x).cuda().permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    tx.requires_grad_(True)
    tw = torch.from_numpy(kernel).cuda().permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    tw.requires_grad_(True)
    tb = torch.from_numpy(bias).cuda().requires_grad_(True)
    tdy = torch.from_numpy(dy).cuda().permute(0, 3, 1, 2)

    def theirs():
        out = torch.relu(torch.nn.functional.conv2d(tx, tw, tb))
        out.backward(tdy)

    a, b = interleave(ours, theirs, sync, repeats)
    flops = 3 * 2.0 * n * oh * ow * f * k * k * c  # forward, dW and dx: three GEMMs of the same size
    row("conv 74x74x32->64 b32", "TFLOP/s", flops / a / 1e12, "torch conv2d (cuDNN)", flops / b / 1e12)

    ph, pw = oh // 2, ow // 2
    py_, parg, pdx = cuda.DeviceArray([n, ph, pw, f]), cuda.DeviceArray([n, ph, pw, f]), cuda.DeviceArray(
        [n, oh, ow, f])
    pdy = dev(rng.standard_normal((n, ph, pw, f), dtype=np.float32))
    mode = _core.kinds.pool_modes["max"]

    def ours_pool():
        _core.cuda_pool2d_forward(y, py_, parg, mode, False, [2, 2], [2, 2], 0)
        _core.cuda_pool2d_backward(pdy, parg, pdx, mode, False, [2, 2], [2, 2], 0)

    ty = torch.randn((n, f, oh, ow), device="cuda").contiguous(memory_format=torch.channels_last).requires_grad_(True)
    tpdy = torch.randn((n, f, ph, pw), device="cuda").contiguous(memory_format=torch.channels_last)

    def theirs_pool():
        torch.nn.functional.max_pool2d(ty, 2).backward(tpdy)

    a, b = interleave(ours_pool, theirs_pool, sync, repeats)
    nbytes = 4.0 * (2 * n * oh * ow * f + 4 * n * ph * pw * f)  # x, dx; y, arg written and read, dy
    row("maxpool 2x2 72x72x64 b32", "GB/s", nbytes / a / 1e9, "torch max_pool2d", nbytes / b / 1e9)


def train_throughput(torch, sizes, batch, n, epochs, repeats):
    """Median samples/s of gradsmith's fit on the GPU and of a PyTorch training loop on the same GPU."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, sizes[0]), dtype=np.float32)
    classes = sizes[-1]
    labels = rng.integers(0, max(classes, 2), n)
    y = labels.astype(np.float32) if classes == 1 else labels

    layers = gradsmith.layers
    stack = [layers.Input((sizes[0],))] + [layers.Dense(u, activation="relu") for u in sizes[1:-1]]
    stack.append(layers.Dense(classes, activation="sigmoid" if classes == 1 else "softmax"))
    model = gradsmith.Sequential(stack)
    model.compile(optimizer="adam", loss="binary_crossentropy" if classes == 1 else
                  "sparse_categorical_crossentropy", metrics=["accuracy"], device="cuda")

    mods = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*mods[:-1]).cuda()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7, fused=True)
    loss_fn = torch.nn.BCEWithLogitsLoss() if classes == 1 else torch.nn.CrossEntropyLoss()
    tx = torch.from_numpy(x).cuda()
    ty = torch.from_numpy(y).cuda().reshape(-1, 1) if classes == 1 else torch.from_numpy(labels).cuda()

    def ours():
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)

    def theirs():
        for _ in range(epochs):
            order = torch.randperm(n, device="cuda")
            for s in range(0, n, batch):
                idx = order[s:s + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(tx[idx]), ty[idx])
                loss.backward()
                opt.step()
        loss.item()

    a, b = interleave(ours, theirs, torch.cuda.synchronize, repeats)
    return n * epochs / a, n * epochs / b


if __name__ == "__main__":
    sys.exit(main())
