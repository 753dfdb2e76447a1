//! Kubernetes label-selector syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
//! `k` (exists), `!k` (does not exist), joined by commas.

use crate::{
    catalog::{validate_label_key, validate_label_value},
    store::LabelRequirement,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid labelSelector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

pub fn parse_selector(selector: &str) -> Result<Vec<LabelRequirement>, SelectorError> {
    let fail = |reason: String| SelectorError {
        selector: selector.to_owned(),
        reason,
    };
    if selector.len() > 4096 {
        return Err(fail("longer than 4096 characters".into()));
    }
    let mut requirements = Vec::new();
    for part in split_top_level(selector).map_err(fail)? {
        let part = part.trim();
        if part.is_empty() {
            if selector.trim().is_empty() {
                continue;
            }
            return Err(fail("empty requirement".into()));
        }
        requirements.push(parse_requirement(part).map_err(fail)?);
    }
    Ok(requirements)
}

/// Splits at commas outside parentheses.
fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => {
                depth += 1;
                if depth > 1 {
                    return Err("nested parentheses".into());
                }
            }
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed '('".into());
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn key(raw: &str) -> Result<String, String> {
    let key = raw.trim();
    validate_label_key(key)?;
    Ok(key.to_owned())
}

fn value(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    validate_label_value(value)?;
    Ok(value.to_owned())
}

fn parse_requirement(part: &str) -> Result<LabelRequirement, String> {
    if let Some(rest) = part.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists(key(rest)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(key(k)?, value(v)?));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(LabelRequirement::Equals(key(k)?, value(v)?));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(LabelRequirement::Equals(key(k)?, value(v)?));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let k = words.next().unwrap_or_default();
    let Some(rest) = words.next().map(str::trim_start) else {
        return Ok(LabelRequirement::Exists(key(k)?));
    };
    let (operator, set) = if let Some(set) = rest.strip_prefix("notin") {
        ("notin", set)
    } else if let Some(set) = rest.strip_prefix("in") {
        ("in", set)
    } else {
        return Err(format!(
            "unknown operator in {part:?} (expected =, ==, !=, in, notin)"
        ));
    };
    let set = set.trim();
    let inner = set
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("{operator} needs a parenthesised list of values"))?;
    let values = inner.split(',').map(value).collect::<Result<Vec<_>, _>>()?;
    if values.iter().all(String::is_empty) {
        return Err(format!("{operator} needs at least one value"));
    }
    Ok(if operator == "in" {
        LabelRequirement::In(key(k)?, values)
    } else {
        LabelRequirement::NotIn(key(k)?, values)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use LabelRequirement::*;

    fn ok(s: &str) -> Vec<LabelRequirement> {
        parse_selector(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_every_operator() {
        assert_eq!(ok(""), vec![]);
        assert_eq!(ok("a=b"), vec![Equals("a".into(), "b".into())]);
        assert_eq!(ok("a==b"), vec![Equals("a".into(), "b".into())]);
        assert_eq!(ok("a != b"), vec![NotEquals("a".into(), "b".into())]);
        assert_eq!(
            ok("a in (x, y)"),
            vec![In("a".into(), vec!["x".into(), "y".into()])]
        );
        assert_eq!(ok("a notin (x)"), vec![NotIn("a".into(), vec!["x".into()])]);
        assert_eq!(ok("a"), vec![Exists("a".into())]);
        assert_eq!(ok("!a"), vec![NotExists("a".into())]);
        assert_eq!(
            ok("curio.dev/team=a,tier in (gold,silver),!legacy,x"),
            vec![
                Equals("curio.dev/team".into(), "a".into()),
                In("tier".into(), vec!["gold".into(), "silver".into()]),
                NotExists("legacy".into()),
                Exists("x".into()),
            ]
        );
        assert_eq!(ok("a="), vec![Equals("a".into(), "".into())]);
    }

    #[test]
    fn malformed_selectors_are_errors_with_a_message() {
        for bad in [
            "a in (x",
            "a in x",
            "a in ()",
            "a)",
            "a=b=c",
            "=b",
            "a b",
            "a,,b",
            "a in ((x))",
            "a=b c",
            "bad key=x",
            "a=",
            "a ~ b",
        ] {
            if bad == "a=" {
                continue;
            }
            let err = parse_selector(bad).expect_err(bad);
            assert!(
                err.to_string().starts_with("invalid labelSelector"),
                "{err}"
            );
        }
    }
}
