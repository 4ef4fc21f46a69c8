//! One reading of the figures: the samples of the OpenMetrics text that
//! [`super::Figures::render`] writes, keyed by name and labels. The EMF writer takes one per
//! interval and reports the difference from the last; tests ask it for totals. Pure
//! functions; nothing to cancel.

use std::collections::BTreeMap;

/// A sample's labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Every sample of one rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    samples: BTreeMap<(String, Labels), f64>,
}

impl Reading {
    /// Reads OpenMetrics text. Lines that are not samples (`#` comments, blank lines, or
    /// anything malformed) are skipped.
    pub fn parse(text: &str) -> Reading {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(sample)
            .collect();
        Reading { samples }
    }

    /// The sum of the samples named `name` whose labels include every pair of `with`.
    pub fn total(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.matching(name, with).map(|(_, value)| value).sum()
    }

    /// The samples named `name` whose labels include every pair of `with`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a Labels, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |((n, labels), _)| {
                n == name
                    && with
                        .iter()
                        .all(|(k, v)| labels.get(*k).is_some_and(|l| l == v))
            })
            .map(|((_, labels), value)| (labels, *value))
    }

    /// The value of the one sample named `name` with exactly `labels`; 0 when absent.
    pub fn value(&self, name: &str, labels: &Labels) -> f64 {
        self.samples
            .get(&(name.to_string(), labels.clone()))
            .copied()
            .unwrap_or(0.0)
    }
}

/// `name{k="v",...} value [timestamp]` as its key and value.
fn sample(line: &str) -> Option<((String, Labels), f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end..].starts_with('{') {
        labels(&line[name_end + 1..])?
    } else {
        (Labels::new(), &line[name_end..])
    };
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(((name.to_string(), labels), value))
}

/// The labels up to the closing `}`, and what follows it.
fn labels(mut text: &str) -> Option<(Labels, &str)> {
    let mut labels = Labels::new();
    loop {
        text = text.trim_start_matches(',');
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        text = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels_and_comments_are_skipped() {
        let text = "# TYPE x counter\n\
                    x_total{kind=\"cdk\",outcome=\"failed\"} 2\n\
                    x_total{kind=\"sam\",outcome=\"failed\"} 3\n\
                    y 4.5\n\
                    h_bucket{le=\"+Inf\",q=\"a \\\"b\\\", c\"} 7\n\
                    broken{kind=\"x 1\n\
                    # EOF\n";
        let reading = Reading::parse(text);
        assert_eq!(reading.total("x_total", &[("outcome", "failed")]), 5.0);
        assert_eq!(reading.total("x_total", &[("kind", "sam")]), 3.0);
        assert_eq!(reading.total("y", &[]), 4.5);
        assert_eq!(
            reading.total("h_bucket", &[("q", "a \"b\", c")]),
            7.0,
            "{reading:?}"
        );
        assert_eq!(reading.total("broken", &[]), 0.0);
        assert_eq!(reading.samples.len(), 4);
    }
}
