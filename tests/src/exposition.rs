//! A strict reader of the OpenMetrics text a node's `/metrics` serves, so scenarios check
//! values by name and labels rather than by substring, and fail on any line a scraper would
//! refuse: a family described twice, a sample outside its family or with the wrong suffix, a
//! label value with a raw quote, backslash or newline, anything after `# EOF`.

use anyhow::{Context, bail, ensure};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its name (`_total`, `_bucket`… included).
    pub name: String,
    /// Its labels, unescaped, in order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// A metric family: its metadata and samples.
#[derive(Debug, Clone, Default)]
pub struct Family {
    /// The family's name.
    pub name: String,
    /// `counter`, `gauge`, `histogram`, …
    pub kind: String,
    /// Its help text.
    pub help: String,
    /// Its unit, if it has one.
    pub unit: Option<String>,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// A whole exposition.
#[derive(Debug, Clone)]
pub struct Exposition {
    /// The families in the order served.
    pub families: Vec<Family>,
}

impl Exposition {
    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The sum of every sample called `name` (all its label sets).
    pub fn sum(&self, name: &str) -> f64 {
        self.families.iter().flat_map(|f| &f.samples).filter(|s| s.name == name).map(|s| s.value).sum()
    }

    /// The value of the sample `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .find(|s| {
                s.name == name
                    && labels.iter().all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| s.value)
    }
}

/// Reads `text`, refusing what a strict OpenMetrics parser refuses.
pub fn parse(text: &str) -> anyhow::Result<Exposition> {
    ensure!(text.ends_with("# EOF\n"), "the exposition does not end with `# EOF`");
    let mut families: Vec<Family> = Vec::new();
    let body = &text[..text.len() - "# EOF\n".len()];
    for (n, line) in body.split_inclusive('\n').enumerate() {
        let line = line.strip_suffix('\n').with_context(|| format!("line {}: no newline", n + 1))?;
        let at = || format!("line {}: {line:?}", n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (Some(what), Some(name), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
                bail!("{}: a metadata line needs a keyword, a name and a value", at());
            };
            check_name(name).with_context(at)?;
            if families.last().is_none_or(|f| f.name != name) {
                ensure!(families.iter().all(|f| f.name != name), "{}: family {name} described twice", at());
                families.push(Family { name: name.to_owned(), ..Family::default() });
            }
            let family = families.last_mut().context("a family")?;
            ensure!(family.samples.is_empty(), "{}: metadata after samples", at());
            match what {
                "HELP" => family.help = rest.to_owned(),
                "TYPE" => family.kind = rest.to_owned(),
                "UNIT" => {
                    ensure!(name.ends_with(&format!("_{rest}")), "{}: the name must end in its unit", at());
                    family.unit = Some(rest.to_owned());
                }
                _ => bail!("{}: unknown metadata", at()),
            }
            continue;
        }
        let sample = parse_sample(line).with_context(at)?;
        let family = families.last_mut().with_context(|| format!("{}: a sample before any family", at()))?;
        let suffixes: &[&str] = match family.kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        ensure!(
            suffixes.iter().any(|s| sample.name == format!("{}{s}", family.name)),
            "{}: not a sample of the {} {}",
            at(),
            family.kind,
            family.name
        );
        family.samples.push(sample);
    }
    Ok(Exposition { families })
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    ensure!(
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "{name:?} is not a metric name"
    );
    Ok(())
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let name_end = line.find(['{', ' ']).context("a sample needs a value")?;
    let name = &line[..name_end];
    check_name(name)?;
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(inside) => parse_labels(inside)?,
        None => (Vec::new(), &line[name_end..]),
    };
    let value = rest.strip_prefix(' ').context("a space before the value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().with_context(|| format!("{v:?} is not a number"))?,
    };
    Ok(Sample { name: name.to_owned(), labels, value })
}

/// The labels from just after `{` to the closing `}`, unescaped, and what follows.
fn parse_labels(mut rest: &str) -> anyhow::Result<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('}') {
        return Ok((labels, after));
    }
    loop {
        let eq = rest.find('=').context("a label needs =")?;
        let key = &rest[..eq];
        check_name(key)?;
        let quoted =
            rest[eq + 1..].strip_prefix('"').with_context(|| format!("label {key}: unquoted value"))?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            let (i, c) = chars.next().with_context(|| format!("label {key}: unterminated value"))?;
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => bail!("label {key}: unknown escape {other:?}"),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        rest = &quoted[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        } else {
            bail!("after label {key}: expected , or }}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
        a_requests_total{who=\"q\\\"b\\\\s\\nn\",x=\"\"} 2\n# TYPE a_up gauge\na_up 1\n# EOF\n";

    #[test]
    fn reads_families_samples_and_escaped_labels() {
        let m = parse(GOOD).expect("parses");
        assert_eq!(m.value("a_requests_total", &[("who", "q\"b\\s\nn"), ("x", "")]), Some(2.0));
        assert_eq!(m.family("a_requests").map(|f| f.kind.as_str()), Some("counter"));
        assert_eq!(m.sum("a_up"), 1.0);
    }

    #[test]
    fn refuses_what_a_scraper_refuses() {
        let bad = [
            ("no EOF", GOOD.replace("# EOF\n", "")),
            ("counter sample without _total", GOOD.replace("a_requests_total{", "a_requests{")),
            ("raw newline in a label", GOOD.replace("s\\nn", "s\nn")),
            ("raw quote in a label", GOOD.replace("q\\\"b", "q\"b")),
            ("unknown escape", GOOD.replace("\\\\s", "\\s")),
            ("family described twice", GOOD.replace("# EOF\n", "# TYPE a_requests counter\n# EOF\n")),
            ("metadata after samples", GOOD.replace("# TYPE a_up gauge\n", "")),
            ("not a number", GOOD.replace("a_up 1", "a_up one")),
        ];
        for (why, text) in bad {
            assert!(parse(&text).is_err(), "{why}: accepted\n{text}");
        }
    }
}
