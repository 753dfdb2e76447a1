//! Which part of a search's text to look up in the trigram index.
//!
//! A GIN trigram lookup reads the whole posting list of every trigram in its pattern, and
//! intersects them. When most names share a part (`asset-`, `model-`, `llama`), the lists of
//! that part's trigrams hold nearly every row, and reading them is most of the search's cost
//! (165 index pages for `asset-1034` over 100,000 `asset-NNNNN` names, against 5 for `1034`).
//! Every substring of `q` is a necessary condition of `q`, so the index can be asked for the
//! substring whose trigrams are rarest and the rows it returns checked against all of `q`:
//! the answer is the same, only cheaper. Which trigrams are frequent is learnt from a sample
//! of the table; a stale or unrepresentative sample makes a search slower, never wrong.
//!
//! Trigrams follow pg_trgm: text is lowercased and split into words of alphanumeric
//! characters; a word is padded with two spaces in front and one behind, except where a
//! pattern's word touches its leading or trailing wildcard.

use std::collections::{HashMap, HashSet};

/// Longer texts are looked up whole: choosing among their windows costs more than it saves,
/// and a long text is selective on its own.
const MAX_CHOSEN_CHARS: usize = 64;

/// Index pages read to find one trigram's posting list, however short.
const ENTRY_PAGES: f64 = 2.0;
/// Row pointers a posting-list page holds (compressed; ~8 KiB pages).
const POSTINGS_PER_PAGE: f64 = 500.0;

/// Trigram frequencies in a sample of the searched texts.
#[derive(Clone, Debug, Default)]
pub struct TrigramFrequencies {
    rows: usize,
    /// Rows in the whole table (the sample's rows unless told otherwise).
    table_rows: f64,
    /// In how many sampled rows each trigram occurs.
    counts: HashMap<String, u32>,
}

impl TrigramFrequencies {
    /// Counts, for each trigram, the sampled texts it occurs in.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut rows = 0;
        for text in texts {
            rows += 1;
            let unique: HashSet<String> = text_trigrams(text).into_iter().collect();
            for trigram in unique {
                *counts.entry(trigram).or_default() += 1;
            }
        }
        Self {
            rows,
            table_rows: rows as f64,
            counts,
        }
    }

    /// The same frequencies for a table of `rows` rows.
    pub fn with_table_rows(self, rows: f64) -> Self {
        Self {
            table_rows: rows.max(self.rows as f64),
            ..self
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The share of rows holding `trigram`; one never seen counts as half a row, so that rarer
    /// is still better than unknown-but-rare.
    fn share(&self, trigram: &str) -> f64 {
        let seen = self.counts.get(trigram).copied().unwrap_or(0) as f64;
        (seen + 0.5) / (self.rows as f64 + 1.0)
    }

    /// The substring of `text` to look up in the index: the one with the lowest estimated
    /// cost (the posting lists it reads, plus the rows it leaves to check). `text` itself when
    /// there is no sample, when it is long, or when no part of it beats it.
    pub fn probe<'t>(&self, text: &'t str) -> &'t str {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let chars = bounds.len() - 1;
        if self.rows == 0 || chars > MAX_CHOSEN_CHARS {
            return text;
        }
        let Some(mut best_cost) = self.cost(&pattern_trigrams(text)) else {
            // No trigram at all: the index cannot narrow this text, nor any part of it.
            return text;
        };
        let mut best = text;
        for start in 0..chars {
            for end in start + 1..=chars {
                if start == 0 && end == chars {
                    continue;
                }
                let window = &text[bounds[start]..bounds[end]];
                if let Some(cost) = self.cost(&pattern_trigrams(window))
                    && cost < best_cost
                {
                    (best, best_cost) = (window, cost);
                }
            }
        }
        best
    }

    /// The estimated cost, in pages, of looking up these trigrams: each one's posting list,
    /// then a row for each candidate (estimated from the two rarest trigrams as if they were
    /// independent: only a comparison between windows, not a forecast). `None` without any.
    fn cost(&self, trigrams: &[String]) -> Option<f64> {
        let unique: HashSet<&String> = trigrams.iter().collect();
        let mut shares: Vec<f64> = unique.into_iter().map(|t| self.share(t)).collect();
        if shares.is_empty() {
            return None;
        }
        shares.sort_by(f64::total_cmp);
        let rows = self.table_rows;
        let lists: f64 = shares
            .iter()
            .map(|share| ENTRY_PAGES + share * rows / POSTINGS_PER_PAGE)
            .sum();
        let candidates = shares.iter().take(2).product::<f64>() * rows;
        Some(lists + candidates)
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// The trigrams pg_trgm indexes for a stored text: every word padded on both sides.
pub fn text_trigrams(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for word in lower
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
    {
        push_trigrams(&mut out, word, true, true);
    }
    out
}

/// The trigrams pg_trgm looks up for `%text%`: words padded except where they touch the
/// wildcards at either end.
pub fn pattern_trigrams(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut offset = 0;
    for word in lower.split(|c: char| !is_word_char(c)) {
        let (start, end) = (offset, offset + word.len());
        offset = end + lower[end..].chars().next().map_or(0, char::len_utf8);
        if word.is_empty() {
            continue;
        }
        push_trigrams(&mut out, word, start > 0, end < lower.len());
    }
    out
}

fn push_trigrams(out: &mut Vec<String>, word: &str, pad_front: bool, pad_back: bool) {
    let padded: Vec<char> = pad_front
        .then_some("  ")
        .into_iter()
        .flat_map(str::chars)
        .chain(word.chars())
        .chain(pad_back.then_some(' '))
        .collect();
    for w in padded.windows(3) {
        out.push(w.iter().collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_follow_pg_trgm() {
        assert_eq!(text_trigrams("Ab-1"), ["  a", " ab", "ab ", "  1", " 1 "]);
        // `%asset-1034%`: `asset` touches the leading wildcard, `1034` the trailing one.
        assert_eq!(
            pattern_trigrams("asset-1034"),
            ["ass", "sse", "set", "et ", "  1", " 10", "103", "034"]
        );
        assert_eq!(pattern_trigrams("1034"), ["103", "034"]);
        assert_eq!(pattern_trigrams("ab"), Vec::<String>::new());
        assert_eq!(
            pattern_trigrams("é-日本語x"),
            ["  日", " 日本", "日本語", "本語x"]
        );
    }

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("asset-{i:05}\u{1f}Asset {i}"))
            .collect()
    }

    #[test]
    fn a_shared_prefix_is_left_to_the_check() {
        let texts = names(2000);
        let frequencies = TrigramFrequencies::from_texts(texts.iter().map(String::as_str));
        assert_eq!(frequencies.rows(), 2000);
        let probe = frequencies.probe("asset-1034");
        assert!(!probe.contains("ass"), "{probe}");
        assert!("asset-1034".contains(probe));
        assert!(pattern_trigrams(probe).len() >= 2, "{probe}");
    }

    #[test]
    fn rare_text_is_narrowed_by_more_trigrams_in_a_large_table() {
        let texts = names(2000);
        let sampled = TrigramFrequencies::from_texts(texts.iter().map(String::as_str));
        // In a table the size of the sample, one unseen trigram leaves few rows to check.
        assert_eq!(sampled.clone().probe("granite"), "gra");
        // In a large one, an unseen trigram may still hold many rows: two narrow enough.
        let frequencies = sampled.with_table_rows(200_000.0);
        assert_eq!(pattern_trigrams(frequencies.probe("granite")).len(), 2);
        // Nothing to narrow with: too short for a trigram.
        assert_eq!(frequencies.probe("as"), "as");
    }

    #[test]
    fn without_a_sample_the_text_is_looked_up_whole() {
        let frequencies = TrigramFrequencies::default();
        assert_eq!(frequencies.probe("asset-1034"), "asset-1034");
        let long = "x".repeat(MAX_CHOSEN_CHARS + 1);
        let sampled = TrigramFrequencies::from_texts(["asset"]);
        assert_eq!(sampled.probe(&long), long);
    }

    #[test]
    fn a_probe_is_always_a_part_of_the_text() {
        let texts = names(500);
        let frequencies = TrigramFrequencies::from_texts(texts.iter().map(String::as_str));
        for q in [
            "école-12",
            "日本語 asset",
            "a%b_c\\d",
            "ASSET-00",
            "  x  ",
            "asset 1",
        ] {
            let probe = frequencies.probe(q);
            assert!(q.contains(probe), "{q:?} -> {probe:?}");
        }
    }
}
