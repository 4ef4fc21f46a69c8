"""Parses OpenMetrics text from stdin with the Prometheus client's strict parser and prints
its samples as JSON: [{"name", "labels", "value"}]. Exits 1 with the parser's error when the
text is not valid OpenMetrics."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
print(json.dumps(samples))
