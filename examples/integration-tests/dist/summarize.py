"""Prints the summary of a JUnit XML report as the job's output, and the failing tests.

Usage: python3 summarize.py <report.xml> <where the report is stored, or "">
stdout: {"passed": N, "failed": N, "skipped": N, "report": "<location>" or null}
stderr: one line naming every failing test (the job's failure cause ends with it).
"""

import json
import sys
import xml.etree.ElementTree as ET

report, location = sys.argv[1], sys.argv[2]
cases = ET.parse(report).getroot().iter("testcase")
passed, failed, skipped = 0, [], 0
for case in cases:
    name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
    if case.find("failure") is not None or case.find("error") is not None:
        failed.append(name)
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
summary = {"passed": passed, "failed": len(failed), "skipped": skipped, "report": location or None}
print(json.dumps(summary))
if failed:
    print(f"{len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
