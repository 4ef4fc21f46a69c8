#!/usr/bin/env python3
"""Draws the service stack's CloudWatch dashboard as an SVG: each widget where the dashboard
puts it, with its title and the metrics it plots (no data: the picture shows the layout an
operator finds). Usage: render_dashboard.py [TEMPLATE] [OUT.svg]; tests/it/stacks.rs checks
that docs/dashboard.svg is what this prints for cloudformation/runner-service.yaml."""

import json
import sys
from xml.sax.saxutils import escape

UNIT_W, UNIT_H = 40, 34


def body(template_text):
    lines = template_text.splitlines()
    at = next(i for i, l in enumerate(lines) if l.strip() == "DashboardBody: !Sub |")
    indent = len(lines[at]) - len(lines[at].lstrip())
    text = []
    for line in lines[at + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        text.append(line)
    text = "\n".join(text)
    for key, value in {"${JobQueue.QueueName}": "QUEUE", "${AWS::Region}": "REGION",
                       "${Cluster}": "CLUSTER", "${Service.Name}": "SERVICE"}.items():
        text = text.replace(key, value)
    return json.loads(text)


def legend(metric):
    strings = [m for m in metric if isinstance(m, str)]
    options = next((m for m in metric if isinstance(m, dict)), {})
    if "expression" in options:
        if options["expression"].startswith("SEARCH"):
            return "AwsErrors by service, operation, class"
        return options.get("label") or options["expression"]
    label = strings[1]
    if "stat" in options:
        label += " " + options["stat"]
    return label


def svg(dashboard):
    widgets = dashboard["widgets"]
    width = 24 * UNIT_W
    height = max(w["y"] + w["height"] for w in widgets) * UNIT_H + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#f4f5f7"/>',
           f'<text x="10" y="{height - 14}" fill="#555">The runner\'s dashboard '
           '(cloudformation/runner-service.yaml): where each widget stands and what it plots</text>']
    for w in widgets:
        x, y = w["x"] * UNIT_W + 4, w["y"] * UNIT_H + 4
        wd, ht = w["width"] * UNIT_W - 8, w["height"] * UNIT_H - 8
        props = w["properties"]
        out.append(f'<rect x="{x}" y="{y}" width="{wd}" height="{ht}" rx="4" fill="#fff" stroke="#c7c9cc"/>')
        out.append(f'<text x="{x + 10}" y="{y + 20}" font-size="14" font-weight="bold">{escape(props["title"])}</text>')
        # A plot area with a baseline, and one legend line per metric.
        out.append(f'<line x1="{x + 10}" y1="{y + ht - 60}" x2="{x + wd - 10}" y2="{y + ht - 60}" stroke="#ddd"/>')
        shown = [m for m in props["metrics"]
                 if not (isinstance(m[-1], dict) and m[-1].get("visible") is False)]
        for n, metric in enumerate(shown):
            colour = ["#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f"][n % 4]
            ly = y + ht - 44 + 14 * (n % 3)
            lx = x + 10 + (n // 3) * (wd // 2)
            out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
            out.append(f'<text x="{lx + 14}" y="{ly}">{escape(legend(metric))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    template = sys.argv[1] if len(sys.argv) > 1 else "cloudformation/runner-service.yaml"
    picture = svg(body(open(template).read()))
    if len(sys.argv) > 2:
        open(sys.argv[2], "w").write(picture)
    else:
        sys.stdout.write(picture)
