"""The README's performance table from the benchmarks' JSON files: each figure, its target, the
last run and the range over the runs given (a day's runs). Prints Markdown; asserts nothing.

    python3 scripts/bench_table.py RUN1.json RUN2.json ... LAST.json

Each file is what `scripts/bench.py --json FILE` writes (or the image test's
target/bench-image.json): figure -> {what, ours, reference, unit, ratio, target}. The last file
given is the last run; a figure missing from some runs has the range of those that hold it."""
import json
import sys


def number(value, unit):
    if value is None:
        return ""
    if unit == "s" and abs(value) < 1:
        return f"{value * 1000:.1f} ms"
    if abs(value) >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}"


def main(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    last = runs[-1]
    names = list(last) + [n for run in runs for n in run if n not in last]
    seen = []
    for name in names:
        if name not in seen:
            seen.append(name)
    print("| Figure | What | Target | Last run: ours | reference | ratio | Day's range: ours (ratio) |")
    print("|---|---|---|---|---|---|---|")
    for name in seen:
        held = [run[name] for run in runs if name in run]
        figure = last.get(name, held[-1])
        unit = figure["unit"]
        # A figure measured several times in one file (the image's cold start) gives its runs.
        ours = [v for f in held for v in (f.get("runs") or [f["ours"]])]
        ratios = [f["ratio"] for f in held if f.get("ratio") is not None]
        spread = f"{number(min(ours), unit)} to {number(max(ours), unit)}"
        if ratios:
            spread += f" ({min(ratios):.2f} to {max(ratios):.2f})"
        spread += f", {len(ours)} run{'s' if len(ours) > 1 else ''}"
        print(f"| {name} | {figure['what']} | {figure.get('target') or ''} | "
              f"{number(figure['ours'], unit)} | {number(figure['reference'], unit)} | "
              f"{'' if figure.get('ratio') is None else format(figure['ratio'], '.2f')} | {spread} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
