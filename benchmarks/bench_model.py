"""Time the paper-size seq2seq LSTM on the CPU: training steps and generation, fast decoder
beside the plain per-step nn.LSTM reference in the same process.

Training step = batch 5, 720 frames, 20 MFCCs, hidden 512, 2 layers: forward + MSE + backward
+ grad-norm clip 1 + SGD(lr 0.005, momentum 0.9) step. Generation = batch 1, 720 and 4320 frames.
Peak memory: each fast case runs once more (after one warm-up call) in a fresh child process,
which resets its peak resident set size (writing 5 to /proc/self/clear_refs) and reads it back
after the call (VmHWM in /proc/self/status): the whole process, torch itself included, and the
part added by the call (peak minus the resident size just before it).

    .venv/bin/python benchmarks/bench_model.py [--quick] [--threads N]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import measure, print_table, row  # noqa: E402

from kakashi.losses import get_loss  # noqa: E402
from kakashi.models import build_model  # noqa: E402
from kakashi.train import train_step  # noqa: E402

T_TRAIN, BATCH, FEATURES = 720, 5, 20
TARGETS = {"train": 2.5, "generate_4320": 2.0}  # seconds, median
MEMORY_TARGET_MIB = 800


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: resident now, VmHWM: peak resident), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    """Set this process's peak resident size (VmHWM) to its current size (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def _train_case(model, tf: float):
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(T_TRAIN, BATCH, FEATURES, generator=g)
    target = 0.3 * torch.randn(T_TRAIN, BATCH, 17, 3, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    model.train()

    return lambda: train_step(model, model, opt, audio, target, get_loss("mse"), tf, clip_grad=1.0)


def _generate_case(model, frames: int):
    g = torch.Generator().manual_seed(1)
    audio = torch.randn(frames, 1, FEATURES, generator=g)
    first = 0.3 * torch.randn(1, 17, 3, generator=g)
    return lambda: model.generate(audio, first)


def _case(model, name: str):
    kind, value = name.split(":")
    return _train_case(model, float(value)) if kind == "train" else _generate_case(model, int(value))


def _memory_child(name: str, threads: int, queue) -> None:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    fn = _case(build_model("seq2seq_lstm"), name)
    fn()
    _reset_peak()
    before = _status_mib("VmRSS")
    fn()
    peak = _status_mib("VmHWM")
    queue.put((peak, peak - before))


def peak_memory(name: str, threads: int) -> tuple[float, float]:
    """(peak RSS of a fresh process running the case once, MiB; increase over the RSS before it)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(name, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, reference timed once")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain nn.LSTM reference")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeat, ref_repeat = (2, 1) if args.quick else (5, 3)
    torch.manual_seed(0)
    fast = build_model("seq2seq_lstm")
    ref = build_model(**{**fast.config, "fast": False})
    ref.load_state_dict(fast.state_dict())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"fast: {repeat} runs after 1 warm-up, reference: {ref_repeat}", flush=True)

    rows = []
    cases = [("train:0.0", "train"), ("train:0.5", "train"), ("train:1.0", "train"),
             ("generate:720", None), ("generate:4320", "generate_4320")]
    for name, target_key in cases:
        times = measure(_case(fast, name), repeat=repeat, warmup=1)
        extra = {}
        if target_key:
            extra["target_s"] = TARGETS[target_key]
        peak, added = peak_memory(name, args.threads)
        extra.update(peak_rss_mib=round(peak), added_mib=round(added))
        if name.startswith("train"):
            extra["mem_target_mib"] = MEMORY_TARGET_MIB
        if not args.no_reference:
            ref_times = measure(_case(ref, name), repeat=ref_repeat, warmup=0 if args.quick else 1)
            extra.update(reference_median_s=statistics.median(ref_times),
                         speedup=statistics.median(ref_times) / statistics.median(times))
        rows.append(row(name, times, **extra))
        print_table(rows[-1:], title=None)
    print_table(rows, title="seq2seq_lstm, paper size (hidden 512, 2 layers, 20 MFCC), CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
