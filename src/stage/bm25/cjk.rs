//! CJK bigrams, Lucene's `CJKBigramFilter` over Unicode words: the analysis
//! for Japanese and Korean when no dictionary segments them. Unicode word
//! boundaries cut Han and Hiragana text into single characters; adjacent
//! ones become overlapping pairs (`検索方法` → `検索`, `索方`, `方法`), and so
//! do the syllables of a Hangul word. Katakana runs stay whole words
//! (`ベクトル`), as do words of other scripts; a lone character stays itself.

use unicode_segmentation::UnicodeSegmentation;

/// Han ideographs and Hiragana: the characters cut into pairs across words.
fn is_paired(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{309F}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}')
}

fn is_hangul(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{11FF}'
        | '\u{3130}'..='\u{318F}'
        | '\u{AC00}'..='\u{D7AF}')
}

/// Calls `each` with the terms of `text`.
pub(crate) fn bigrams(text: &str, each: &mut impl FnMut(&str)) {
    // The current run of adjacent paired characters: (start, end) bytes.
    let mut run: Option<(usize, usize)> = None;
    for (start, word) in text.unicode_word_indices() {
        let end = start + word.len();
        if word.chars().all(is_paired) {
            run = match run {
                Some((run_start, run_end)) if run_end == start => Some((run_start, end)),
                _ => {
                    flush(text, run, each);
                    Some((start, end))
                }
            };
            continue;
        }
        flush(text, run.take(), each);
        if word.chars().all(is_hangul) {
            pairs(word, each);
        } else {
            each(word);
        }
    }
    flush(text, run, each);
}

fn flush(text: &str, run: Option<(usize, usize)>, each: &mut impl FnMut(&str)) {
    if let Some((start, end)) = run {
        pairs(&text[start..end], each);
    }
}

/// Overlapping pairs of characters; a lone character as itself.
fn pairs(run: &str, each: &mut impl FnMut(&str)) {
    let bounds: Vec<usize> = run
        .char_indices()
        .map(|(i, _)| i)
        .chain([run.len()])
        .collect();
    if bounds.len() <= 2 {
        each(run);
        return;
    }
    for window in bounds.windows(3) {
        each(&run[window[0]..window[2]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        bigrams(text, &mut |t: &str| out.push(t.to_string()));
        out
    }

    #[test]
    fn han_and_hiragana_runs_become_pairs_katakana_and_latin_stay_whole() {
        assert_eq!(
            terms("ベクトル検索とは Milvus 2.5 の機能"),
            [
                "ベクトル",
                "検索",
                "索と",
                "とは",
                "milvus",
                "2.5",
                "の機",
                "機能"
            ]
            .map(|t| if t == "milvus" { "Milvus" } else { t })
        );
    }

    #[test]
    fn hangul_words_become_pairs_and_a_lone_character_stays() {
        assert_eq!(terms("벡터 검색 엔진 는"), ["벡터", "검색", "엔진", "는"]);
        assert_eq!(
            terms("데이터베이스"),
            ["데이", "이터", "터베", "베이", "이스"]
        );
    }
}
