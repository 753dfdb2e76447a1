//! The words a description is searched by. `q` matches a description when every word of `q`
//! begins a word of the description (names and display names are matched by substring, in
//! the store). A word is a maximal run of alphanumeric characters (Unicode), lowercased; the
//! store keeps each description's distinct words and looks `q`'s words up as prefixes, so
//! both sides must cut words the same way: this module is that one way.

/// Characters of a word that count. A longer word is kept, and looked up, by its first
/// `MAX_TERM_CHARS`: a query word up to this long matches exactly, a longer one on its start.
pub const MAX_TERM_CHARS: usize = 64;

/// The words of `text`, lowercased and cut to [`MAX_TERM_CHARS`], in order, repeats kept.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    raw_words(text).map(|word| {
        let mut lowered = String::with_capacity(word.len());
        push_word(&mut lowered, word);
        lowered
    })
}

/// The maximal runs of alphanumeric characters of `text`, as they are.
fn raw_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
}

/// Appends `word` cut to [`MAX_TERM_CHARS`] and lowercased: the one definition of a word's
/// form, which [`words`] and [`description_terms`] share.
fn push_word(out: &mut String, word: &str) {
    if word.is_ascii() {
        // One byte per character, and ASCII lowercases to ASCII.
        let cut = &word[..word.len().min(MAX_TERM_CHARS)];
        out.extend(cut.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        // Per character: `str::to_lowercase` gives a final sigma its own form, which would
        // make a word's lowercase depend on where it was cut.
        out.extend(
            word.chars()
                .take(MAX_TERM_CHARS)
                .flat_map(char::to_lowercase),
        );
    }
}

/// A description's distinct words, sorted and joined by single spaces (empty without any):
/// what the store keeps beside the description and indexes.
pub fn description_terms(description: Option<&str>) -> String {
    let Some(description) = description else {
        return String::new();
    };
    // Every word, lowercased, in one buffer that `spans` cut up: a refresh computes this for
    // each of its records, and a string per word was most of the cost.
    let mut lowered = String::with_capacity(description.len());
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for word in raw_words(description) {
        let start = lowered.len();
        push_word(&mut lowered, word);
        spans.push(start..lowered.len());
    }
    let word = |span: &std::ops::Range<usize>| &lowered[span.clone()];
    spans.sort_unstable_by(|a, b| word(a).cmp(word(b)));
    spans.dedup_by(|a, b| word(a) == word(b));
    let mut terms = String::with_capacity(lowered.len() + spans.len());
    for (i, span) in spans.iter().enumerate() {
        if i > 0 {
            terms.push(' ');
        }
        terms.push_str(word(span));
    }
    terms
}

/// Whether a description whose terms are `terms` (from [`description_terms`]) matches `q`:
/// `q` has a word and each of its words begins one of the terms. The reference the store's
/// SQL is tested against.
pub fn terms_match(terms: &str, q: &str) -> bool {
    let mut wanted = words(q).peekable();
    wanted.peek().is_some()
        && wanted.all(|word| terms.split(' ').any(|term| term.starts_with(&word)))
}

/// Whether an asset matches `q`: its name or display name holds `q` (ignoring case), or its
/// description's terms match `q` ([`terms_match`]). What the store's search filter finds.
pub fn matches(q: &str, name: &str, display_name: Option<&str>, terms: &str) -> bool {
    let needle = q.to_lowercase();
    std::iter::once(name)
        .chain(display_name)
        .any(|field| field.to_lowercase().contains(&needle))
        || terms_match(terms, q)
}

/// `q`'s words as a PostgreSQL `tsquery` of prefixes, `'word':* & …`, or `None` without any.
/// Words are verbatim lexemes (no parser, no stemming), quoted as the `tsquery` input wants.
pub fn prefix_tsquery(q: &str) -> Option<String> {
    let query = words(q)
        .map(|word| format!("'{}':*", word.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" & ");
    (!query.is_empty()).then_some(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_alphanumeric_runs() {
        let found: Vec<String> = words("Decoder-only LLaMA_3.1, école; 日本語 50% a\tb").collect();
        assert_eq!(
            found,
            [
                "decoder",
                "only",
                "llama",
                "3",
                "1",
                "école",
                "日本語",
                "50",
                "a",
                "b"
            ]
        );
        assert_eq!(words("%_ -\\").count(), 0);
    }

    #[test]
    fn a_word_lowercases_the_same_wherever_it_ends() {
        assert!(terms_match(&description_terms(Some("ΟΔΟΣΣ")), "ΟΔΟΣ"));
    }

    #[test]
    fn long_words_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TERM_CHARS + 10);
        let found: Vec<String> = words(&long).collect();
        assert_eq!(found, ["é".repeat(MAX_TERM_CHARS)]);
    }

    #[test]
    fn terms_are_distinct_and_sorted() {
        assert_eq!(
            description_terms(Some("Beta alpha beta ALPHA gamma")),
            "alpha beta gamma"
        );
        assert_eq!(description_terms(None), "");
        assert_eq!(description_terms(Some("-- !")), "");
    }

    #[test]
    fn every_word_of_q_must_begin_a_term() {
        let terms = description_terms(Some("Instruction-following model for code generation"));
        assert!(terms_match(&terms, "instr"));
        assert!(terms_match(&terms, "CODE gen"));
        assert!(terms_match(&terms, "generation, code"));
        assert!(!terms_match(&terms, "struction"));
        assert!(!terms_match(&terms, "code vision"));
        // No word at all matches nothing.
        assert!(!terms_match(&terms, "%"));
        assert!(!terms_match(&terms, ""));
    }

    #[test]
    fn names_match_by_substring_and_descriptions_by_word_prefix() {
        let terms = description_terms(Some("A retrieval model"));
        assert!(matches("ODEL-12", "my-model-123", None, &terms));
        assert!(matches("chat", "x", Some("Granite Chat"), &terms));
        assert!(matches("retr", "x", None, &terms));
        assert!(!matches("etrieval", "x", None, &terms));
        assert!(matches("50%", "rate-50%", None, ""));
    }

    #[test]
    fn the_tsquery_quotes_each_word_as_a_prefix() {
        assert_eq!(
            prefix_tsquery("Code, GEN").as_deref(),
            Some("'code':* & 'gen':*")
        );
        assert_eq!(prefix_tsquery("%_"), None);
    }

    /// The definition [`description_terms`] must keep: one string per word, sorted, deduped.
    fn reference_terms(description: &str) -> String {
        let mut terms: Vec<String> = description
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(|word| {
                word.chars()
                    .take(MAX_TERM_CHARS)
                    .flat_map(char::to_lowercase)
                    .collect()
            })
            .collect();
        terms.sort_unstable();
        terms.dedup();
        terms.join(" ")
    }

    proptest::proptest! {
        #[test]
        fn terms_are_the_reference_definition(
            description in "([a-zA-Z0-9]{0,70}|[ΣσςİIıéÉ日本ß0-9]{0,70}|[ ,.;_%\\-]{1,3}){0,12}"
        ) {
            proptest::prop_assert_eq!(
                description_terms(Some(&description)),
                reference_terms(&description)
            );
        }
    }

    #[test]
    fn mixed_and_long_words_match_the_reference() {
        for description in [
            "ΟΔΟΣΣ İstanbul Straße ÉCOLE école",
            &format!("{} {}", "A".repeat(100), "İ".repeat(70)),
            "Beta alpha beta ALPHA gamma",
        ] {
            assert_eq!(
                description_terms(Some(description)),
                reference_terms(description)
            );
        }
    }

    #[test]
    fn a_long_query_word_matches_on_its_start() {
        let stored = "x".repeat(100);
        let terms = description_terms(Some(&stored));
        assert!(terms_match(&terms, &"x".repeat(100)));
        assert!(terms_match(&terms, &"x".repeat(90)));
        assert!(!terms_match(&terms, &format!("{}y", "x".repeat(40))));
    }
}
