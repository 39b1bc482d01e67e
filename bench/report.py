"""The benchmark's derived figures (ratios, speed-ups) and its printed tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bench.configs import MODES
from bench.memory import mib

# Best figure of other implementations on a 2-thread CPU of this kind (given with the task, not
# re-measured here): rosinality/glow-pytorch and y0ast/Glow-PyTorch; images/s.
REFERENCE = {
    "S": {"train": 184.0, "eval": 729.0, "sample": 792.0},
    "C": {"train": 36.1, "eval": 136.0, "sample": 123.0},
}
TARGET = {
    "S": {"train": 240.0, "eval": 1190.0, "sample": 1190.0},
    "C": {"train": 47.0, "eval": 205.0, "sample": 185.0},
}
#: Ablation variant -> the default it turns off (its speed-up is plain ÷ variant).
ABLATIONS = {"nchw": "channels_last", "glibc_malloc": "malloc_tuning"}


def derive(name: str, r: dict[str, Any], matmul_flops_per_s: float) -> None:
    """Add to a config's results the ratios to the references, targets and matmul peak, and the
    options' speed-ups (ablations: default ÷ default switched off; compile: compiled ÷ default)."""
    r["reference"] = REFERENCE[name]
    r["target"] = TARGET[name]
    have = [m for m in MODES if m in r]
    r["ratio_vs_reference"] = {m: r[m]["images_per_s"] / REFERENCE[name][m] for m in have}
    r["ratio_vs_target"] = {m: r[m]["images_per_s"] / TARGET[name][m] for m in have}
    r["meets_target"] = {m: r[m]["images_per_s"] >= TARGET[name][m] for m in have}
    for mode, flops in (("eval", "fwd_flops_per_image"), ("train", "train_flops_per_image")):
        if mode in r:
            r[f"{mode}_flops_per_s"] = r[flops] * r[mode]["images_per_s"]
            r[f"{mode}_flops_vs_matmul"] = r[f"{mode}_flops_per_s"] / matmul_flops_per_s
    if "train" in r and "train_memory_saving" in r:
        r["memory_saving_train_speed_ratio"] = (
            r["train_memory_saving"]["images_per_s"] / r["train"]["images_per_s"]
        )
    for option in ("channels_last", "malloc_tuning", "compile"):
        v = r.get(option)
        if v and "error" not in v:
            ablation = option in ABLATIONS.values()
            v["speedup"] = {
                m: (r[m] if ablation else v[m])["images_per_s"]
                / (v[m] if ablation else r[m])["images_per_s"]
                for m in MODES
                if m in v and m in r
            }


def _rate(r: dict[str, Any], mode: str, cfg_name: str) -> str:
    if mode not in r:
        return "error"
    v = r[mode]["images_per_s"]
    ok = "✓" if v >= TARGET[cfg_name][mode] else "✗"
    return f"{v:,.1f} ×{v / REFERENCE[cfg_name][mode]:.2f} {ok}"


def _busy(r: dict[str, Any]) -> str:
    vals = [r[m]["other_processes_cpu_cores"] for m in MODES if m in r]
    return f"{max(vals):.2f}" if vals else "-"


def _eq_cells(eq: dict[str, Any], option: str) -> tuple[str, str]:
    e = eq.get(option, {})
    if "error" in e:
        return ("error", e["error"][:40])
    if not e:
        return ("-", "-")
    return (f"{e['max_abs_bpd_diff']:.2e}", f"{e['max_rel_grad_diff']:.2e}")


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col == "op" else "right")
    return table


def _throughput(report: dict[str, Any]) -> Table:
    t = _table(
        "Throughput, images/s (median). ×N = ratio to the best reference; ✓/✗ = target met",
        ("cfg", "params", "fwd GFLOP/img", "train", "train mem-saving", "eval (log p)",
         "sample T=0.7", "eval FLOP/s ÷ matmul", "busy other cores"),
    )  # fmt: skip
    for name, r in report["configs"].items():
        ms = r.get("train_memory_saving")
        t.add_row(
            name,
            f"{r['params'] / 1e6:.2f}M",
            f"{r['fwd_flops_per_image'] / 1e9:.3f}",
            _rate(r, "train", name),
            f"{ms['images_per_s']:,.1f}" if ms else "error",
            _rate(r, "eval", name),
            _rate(r, "sample", name),
            f"{100 * r['eval_flops_vs_matmul']:.1f}%" if "eval_flops_vs_matmul" in r else "-",
            _busy(r),
        )
    return t


def _memory(report: dict[str, Any]) -> tuple[Table, Table]:
    t = _table(
        "Peak memory, MiB: peak RSS of a fresh process / its rise above the RSS after model "
        "construction (allocators returning freed memory at once)",
        ("cfg", *MODES),
    )
    for name, r in report["configs"].items():
        mem = r["memory"]
        t.add_row(
            name,
            *(
                f"{mib(mem[m]['peak_rss_bytes']):,.0f} / {mib(mem[m]['above_baseline_bytes']):,.0f}"
                for m in MODES
            ),
        )
    d = report["memory_depth"]
    depth = _table(
        f"Training peak memory vs depth K (config S shapes, batch {d['config']['batch']}), "
        "MiB: peak / rise",
        ("K", "params", "standard", "memory_saving", "peak ratio", "rise ratio"),
    )
    for row in d["rows"]:
        s, v = row["standard"], row["memory_saving"]
        depth.add_row(
            str(row["steps"]),
            f"{row['params'] / 1e6:.2f}M",
            f"{mib(s['peak_rss_bytes']):,.0f} / {mib(s['above_baseline_bytes']):,.0f}",
            f"{mib(v['peak_rss_bytes']):,.0f} / {mib(v['above_baseline_bytes']):,.0f}",
            f"{row['peak_ratio']:.2f}",
            f"{row['above_baseline_ratio']:.2f}",
        )
    return t, depth


def _options(report: dict[str, Any]) -> Table:
    t = _table(
        "Options: speed-up (defaults: with ÷ without, in the same run; others: ÷ defaults), "
        "and max |Δ bits/dim| (train and eval) against the plain NCHW model on a fixed batch",
        ("cfg", "option", *MODES, "compile s (train/eval/sample)", "max |Δbpd|", "max rel Δgrad"),
    )
    for name, r in report["configs"].items():
        eq = r["equivalence"]
        msr = r.get("memory_saving_train_speed_ratio")
        speed = f"×{msr:.2f}" if msr else "-"
        t.add_row(name, "memory_saving", speed, "-", "-", "-", *_eq_cells(eq, "memory_saving"))
        for option in ("channels_last", "malloc_tuning", "compile"):
            v = r.get(option)
            if v is None:
                if option in eq:
                    t.add_row(name, option, "(not timed)", "", "", "", *_eq_cells(eq, option))
            elif "error" in v:
                t.add_row(name, option, "error", v["error"][:50], "", "", *_eq_cells(eq, option))
            else:
                sp = v.get("speedup", {})
                compile_s = [
                    f"{v[m]['compile_s']:.0f}" for m in MODES if "compile_s" in v.get(m, {})
                ]
                t.add_row(
                    name,
                    option,
                    *(f"×{sp[m]:.2f}" if m in sp else "-" for m in MODES),
                    "/".join(compile_s) or "-",
                    *_eq_cells(eq, option),
                )
    return t


def print_report(report: dict[str, Any]) -> None:
    """The tables bench/README.md describes, from the JSON report."""
    console = Console(width=max(150, Console().width))
    m = report["machine"]
    console.print(
        f"[bold]glowapp benchmark[/] — torch {m['torch']}, {m['threads']} threads, {m['cpu_model']} "
        f"({m['cpu_count']} CPUs); load average start {report['load_average_start']} end "
        f"{report['load_average_end']}"
        + ("  [yellow](--quick: tiny sizes, not a measurement)[/]" if report["quick"] else "")
    )
    console.print(
        f"float32 matmul {report['matmul']['n']}², median: "
        f"{report['matmul']['flops_per_s'] / 1e9:.1f} GFLOP/s at the start, "
        f"{report['matmul_end']['flops_per_s'] / 1e9:.1f} at the end (the higher is the "
        f"reference); defaults timed: channels-last, malloc tuned ({report['malloc_tuning']})"
    )
    console.print(_throughput(report))
    targets = _table(
        "Targets / best reference (images/s)",
        ("cfg", "train tgt / ref", "eval tgt / ref", "sample tgt / ref"),
    )
    for name in report["configs"]:
        targets.add_row(name, *(f"{TARGET[name][m]:g} / {REFERENCE[name][m]:g}" for m in MODES))
    console.print(targets)
    console.print(*_memory(report))
    console.print(_options(report))
    for name, prof in (report.get("profile") or {}).items():
        for mode, p in prof.items():
            t = _table(
                f"Profile {name} {mode}: top ops by self CPU time "
                f"({p['self_cpu_ms_per_step']:.1f} ms/step)",
                ("op", "ms/step", "%", "calls/step"),
            )
            for e in p["top_ops"]:
                t.add_row(
                    e["name"][:60],
                    f"{e['self_cpu_ms_per_step']:.2f}",
                    f"{e['percent']:.1f}",
                    f"{e['calls_per_step']:.0f}",
                )
            console.print(t)
