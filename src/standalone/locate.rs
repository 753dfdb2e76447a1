//! Finding the line of a field in a YAML document, for messages that name it: `spec.sorce` →
//! the line of `sorce:`. Block-style YAML is followed key by key and item by item; where the rest
//! of the path is written in flow style (`{…}`, `[…]`) or is missing, the deepest line found is
//! the answer. Pure: text in, a line number out.

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// `spec.source.inline.assets[3].licence` → its steps.
pub fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key.to_owned()));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(index) = rest[1..close].parse() {
                out.push(Step::Index(index));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// One non-blank, non-comment line: where its content starts once `- ` item markers are
/// passed, the columns of those markers, and the content.
struct Line<'a> {
    number: usize,
    column: usize,
    dashes: Vec<usize>,
    content: &'a str,
}

fn scan(text: &str, first: usize) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    for (offset, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut column = raw.len() - trimmed.len();
        let mut content = trimmed;
        let mut dashes = Vec::new();
        while let Some(rest) =
            content
                .strip_prefix("- ")
                .or(if content == "-" { Some("") } else { None })
        {
            dashes.push(column);
            let after = rest.trim_start();
            column += 2 + (rest.len() - after.len());
            content = after;
        }
        lines.push(Line {
            number: first + offset,
            column,
            dashes,
            content,
        });
    }
    lines
}

fn is_key(content: &str, key: &str) -> bool {
    [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .any(|k| {
            content
                .strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with(':'))
        })
}

/// The line of `path` in `document`, whose first line is line `first` of its file.
pub fn line_of(document: &str, first: usize, path: &[Step]) -> usize {
    let lines = scan(document, first);
    let mut region: &[Line<'_>] = &lines;
    // The column a child must start right of; a list may also sit at its key's own column.
    let mut parent: Option<usize> = None;
    let mut best = first;
    for step in path {
        match step {
            Step::Key(key) => {
                let children = region
                    .iter()
                    .filter(|l| parent.is_none_or(|p| l.column > p))
                    .map(|l| l.column)
                    .min();
                let Some(column) = children else { break };
                let Some(at) = region
                    .iter()
                    .position(|l| l.column == column && is_key(l.content, key))
                else {
                    break;
                };
                best = region[at].number;
                let end = region[at + 1..]
                    .iter()
                    .position(|l| {
                        l.column <= column && l.dashes.first().is_none_or(|d| *d != column)
                    })
                    .map_or(region.len(), |n| at + 1 + n);
                region = &region[at + 1..end];
                parent = Some(column);
            }
            Step::Index(index) => {
                let item_column = region
                    .iter()
                    .flat_map(|l| l.dashes.iter().copied())
                    .filter(|d| parent.is_none_or(|p| *d >= p))
                    .min();
                let Some(dash) = item_column else { break };
                let starts: Vec<usize> = region
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.dashes.contains(&dash))
                    .map(|(i, _)| i)
                    .collect();
                let Some(&at) = starts.get(*index) else { break };
                best = region[at].number;
                let end = starts.get(index + 1).copied().unwrap_or(region.len());
                // The item's own first line holds its first key, right of the dash.
                region = &region[at..end];
                parent = Some(dash);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
apiVersion: curio.dev/v1alpha1
kind: CatalogSource
metadata:
  name: models
spec:
  intervall: 5m
  source:
    inline:
      assets:
      - kind: Model
        name: a
      - kind: Model
        # a comment
        name: b
        licence: mit
  curation:
    - match: '*'
      aproved: true
";

    fn at(path: &str) -> usize {
        line_of(DOC, 10, &steps(path))
    }

    #[test]
    fn paths_parse_into_keys_and_indexes() {
        assert_eq!(
            steps("spec.assets[3].licence"),
            [
                Step::Key("spec".into()),
                Step::Key("assets".into()),
                Step::Index(3),
                Step::Key("licence".into())
            ]
        );
    }

    #[test]
    fn block_style_fields_are_found() {
        assert_eq!(at("spec.intervall"), 15);
        assert_eq!(at("spec.source.inline.assets[1].licence"), 24);
        assert_eq!(at("spec.source.inline.assets[0].kind"), 19);
        assert_eq!(at("spec.curation[0].aproved"), 27);
        assert_eq!(at("metadata.name"), 13);
    }

    #[test]
    fn flow_style_or_missing_fields_give_the_deepest_line_found() {
        let flow = "kind: CatalogSource\nspec: {sorce: {}}\n";
        assert_eq!(line_of(flow, 1, &steps("spec.sorce")), 2);
        assert_eq!(at("spec.source.nothing"), 16);
        assert_eq!(at("spec.source.inline.assets[7]"), 18);
    }
}
