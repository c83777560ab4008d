//! NLTK's `word_tokenize`, the tokenizer of pymilvus.model's default
//! analyzers for every language with a Snowball stemmer: Punkt sentence
//! splitting (with the English model as pymilvus ships it: no learned
//! abbreviations, collocations or sentence starters), then the Treebank
//! tokenizer's substitutions on each sentence, then a split on white space.
//!
//! The substitutions are NLTK's `NLTKWordTokenizer` rules, in its order;
//! the sentence rules are Punkt's decisions for an empty model: a word
//! ending in one period ends a sentence, except an initial (`J.`) or a
//! number (`3.`) before a lower-case word, and an initial before an
//! upper-case one. `?` and `!` always end one; `..` never does.

use std::borrow::Cow;
use std::sync::LazyLock;

use fancy_regex::Regex;

/// One substitution: a pattern and its replacement (`$1`, `${0}`).
struct Rule(Regex, &'static str);

impl Rule {
    fn new(pattern: &str, replacement: &'static str) -> Self {
        Rule(
            Regex::new(pattern).expect("NLTK's patterns compile"),
            replacement,
        )
    }

    fn apply<'t>(&self, text: Cow<'t, str>) -> Cow<'t, str> {
        // A backtracking limit (never reached by these short look-arounds)
        // leaves the text as it was rather than failing the record.
        match self.0.try_replacen(&text, 0, self.1) {
            Ok(Cow::Owned(replaced)) => Cow::Owned(replaced),
            Ok(Cow::Borrowed(_)) | Err(_) => text,
        }
    }
}

fn rules(list: &[(&str, &'static str)]) -> Vec<Rule> {
    list.iter().map(|(p, r)| Rule::new(p, r)).collect()
}

static STARTING_QUOTES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        ("([«“‘„]|[`]+)", " $1 "),
        ("^\"", "``"),
        ("(``)", " $1 "),
        ("([ (\\[{<])(\"|'{2})", "$1 `` "),
        ("(?i)(?<!\\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\\b)(?=\\w)", "$1 "),
    ])
});

static PUNCTUATION: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        ("([^.])(\\.)((?>[\\])}>\"'»”’ ]*))\\s*$", "$1 $2 $3 "),
        ("([:,])([^\\d])", " $1 $2"),
        ("([:,])$", " $1 "),
        ("\\.{2,}", " ${0} "),
        ("[;@#$%&]", " ${0} "),
        ("[\\x{2012}-\\x{2015}]", " ${0} "),
        ("([^.])(\\.)([\\])}>\"']*)\\s*$", "$1 $2$3 "),
        ("[?!]", " ${0} "),
        ("([^'])' ", "$1 ' "),
        ("[*]", " ${0} "),
        ("[\\]\\[(){}<>]", " ${0} "),
        ("--", " -- "),
    ])
});

static ENDING_QUOTES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        ("([»”’])", " $1 "),
        ("''", " '' "),
        ("\"", " '' "),
        ("\\s+", " "),
        ("([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "),
        ("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "),
    ])
});

static CONTRACTIONS: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    rules(&[
        ("(?i)\\b(can)(not)\\b", " $1 $2 "),
        ("(?i)\\b(d)('ye)\\b", " $1 $2 "),
        ("(?i)\\b(gim)(me)\\b", " $1 $2 "),
        ("(?i)\\b(gon)(na)\\b", " $1 $2 "),
        ("(?i)\\b(got)(ta)\\b", " $1 $2 "),
        ("(?i)\\b(lem)(me)\\b", " $1 $2 "),
        ("(?i)\\b(more)('n)\\b", " $1 $2 "),
        ("(?i)\\b(wan)(na)(?=\\s)", " $1 $2 "),
        ("(?i) ('t)(is)\\b", " $1 $2 "),
        ("(?i) ('t)(was)\\b", " $1 $2 "),
    ])
});

/// A possible sentence end: `.`, `?` or `!` before punctuation or before
/// white space and a next token (Punkt's period context).
static SENTENCE_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("[.?!](?=(?:[)\";}\\]*:@'({\\[‘’“”«»!?])|\\s+(\\S+))").expect("compiles")
});

/// Closing punctuation that Punkt moves back to the sentence before.
static REALIGNED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[\"')\\]}‘’“”«»]+?(?:\\s+|(?=--)|$)").expect("compiles"));

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^-?[.,]?\\d[\\d,.-]*\\.?$").expect("compiles"));

/// The tokens of `text`, as NLTK's `word_tokenize(text)` returns them.
pub(crate) fn word_tokenize(text: &str, mut each: impl FnMut(&str)) {
    for sentence in sentences(text) {
        tokenize_sentence(sentence, &mut each);
    }
}

fn tokenize_sentence(sentence: &str, each: &mut impl FnMut(&str)) {
    let mut text = Cow::Borrowed(sentence);
    for rule in STARTING_QUOTES.iter().chain(PUNCTUATION.iter()) {
        text = rule.apply(text);
    }
    let mut text = Cow::Owned(format!(" {text} "));
    for rule in ENDING_QUOTES.iter().chain(CONTRACTIONS.iter()) {
        text = rule.apply(text);
    }
    text.split_whitespace().for_each(each);
}

/// Punkt's sentences of `text` (with an empty English model).
fn sentences(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut start = 0;
    for end in SENTENCE_END.captures_iter(text) {
        let Ok(end) = end else { break };
        let mark = end.get(0).expect("a match");
        if mark.start() < start || !ends_sentence(text, mark.start(), end.get(1)) {
            continue;
        }
        let mut stop = mark.end();
        let mut next = end.get(1).map_or(mark.end(), |t| t.start());
        if let Ok(Some(closing)) = REALIGNED.find(&text[next..]) {
            stop = next + closing.as_str().trim_end().len();
            next += closing.end();
        }
        found.push(&text[start..stop]);
        start = next.max(stop);
    }
    found.push(text[start..].trim_end());
    found.retain(|s| !s.trim().is_empty());
    found
}

/// Whether the mark at `at` ends a sentence, given the token after it.
fn ends_sentence(text: &str, at: usize, next: Option<fancy_regex::Match>) -> bool {
    let mark = &text[at..at + 1];
    if mark != "." {
        return true;
    }
    // Punkt's word before the mark: after the last white space and the last
    // character that ends a word, less the characters no word starts with.
    let chunk = after_last(&text[..at], char::is_whitespace);
    let chunk = after_last(chunk, |c| ")\";}]*:@'({[‘’“”«»!?".contains(c));
    let chunk = chunk.trim_start_matches(|c: char| "(\"`{[:;&#*@)}]-,".contains(c));
    let word = &text[at - chunk.len()..=at];
    if word == "." {
        return true;
    }
    if word.ends_with("..") {
        return false;
    }
    let stem = &word[..word.len() - 1];
    let mut chars = stem.chars();
    let initial = matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic());
    let number = NUMBER.is_match(&word.to_lowercase()).unwrap_or(false);
    if !initial && !number {
        return true;
    }
    let next = next.map_or("", |m| m.as_str());
    let first = next.chars().next();
    if [";", ":", ",", ".", "!", "?"].contains(&next) || first.is_some_and(char::is_lowercase) {
        return false;
    }
    !(initial && first.is_some_and(char::is_uppercase))
}

/// What follows the last character of `text` that `is_boundary` accepts.
fn after_last(text: &str, is_boundary: impl Fn(char) -> bool) -> &str {
    match text.char_indices().rev().find(|&(_, c)| is_boundary(c)) {
        Some((i, c)) => &text[i + c.len_utf8()..],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        word_tokenize(text, |t| out.push(t.to_string()));
        out
    }

    #[test]
    fn nltk_documented_example() {
        // NLTK's docstring for word_tokenize (sentences split first).
        let text = "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.";
        assert_eq!(
            tokens(text),
            [
                "Good", "muffins", "cost", "$", "3.88", "in", "New", "York", ".", "Please", "buy",
                "me", "two", "of", "them", ".", "Thanks", "."
            ]
        );
    }

    #[test]
    fn quotes_contractions_and_hyphens() {
        assert_eq!(
            tokens("\"Don't stop,\" she said: open-source re-rankers can't wait."),
            [
                "``",
                "Do",
                "n't",
                "stop",
                ",",
                "''",
                "she",
                "said",
                ":",
                "open-source",
                "re-rankers",
                "ca",
                "n't",
                "wait",
                "."
            ]
        );
    }

    #[test]
    fn initials_and_numbers_before_lower_case_words_end_no_sentence() {
        assert_eq!(
            tokens("J. Smith wrote 3. then stopped. Next"),
            ["J.", "Smith", "wrote", "3.", "then", "stopped", ".", "Next"]
        );
    }
}
