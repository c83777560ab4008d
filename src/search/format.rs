//! Hits as a table for people, or as JSON lines for other tools.

use serde::Serialize;

use super::Hit;

/// The hits as a table (rank, scores, id, the text's first 90 characters),
/// or as one JSON object per line.
pub fn format_hits(hits: &[Hit], json: bool) -> String {
    if json {
        return json_lines(hits.iter());
    }
    let mut out = String::new();
    let reranked = hits.iter().any(|h| h.rerank_score.is_some());
    // The id column is as wide as the longest id, so the texts line up.
    let width = hits
        .iter()
        .map(|h| h.id.chars().count())
        .max()
        .unwrap_or(0)
        .max(ID_WIDTH);
    out.push_str(&if reranked {
        format!(
            "{:>4}  {:>8}  {:>8}  {:<width$}  text\n",
            "rank", "rerank", "score", "id"
        )
    } else {
        format!("{:>4}  {:>8}  {:<width$}  text\n", "rank", "score", "id")
    });
    for hit in hits {
        let text: String = hit.text.chars().take(90).collect();
        let more = if hit.text.chars().count() > 90 {
            "…"
        } else {
            ""
        };
        let rerank = match (reranked, hit.rerank_score) {
            (false, _) => String::new(),
            (true, Some(score)) => format!("{score:>8.4}  "),
            (true, None) => format!("{:>8}  ", ""),
        };
        out.push_str(&format!(
            "{:>4}  {rerank}{:>8.4}  {:<width$}  {text}{more}\n",
            hit.rank, hit.score, hit.id
        ));
    }
    out
}

/// The id column's least width.
const ID_WIDTH: usize = 16;

/// One JSON object per line.
pub fn json_lines<T: Serialize>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&serde_json::to_string(&item).expect("plain data serializes"));
        out.push('\n');
    }
    out
}

/// A hit of one query among many: the hit's fields and the query's id.
#[derive(Serialize)]
pub struct QueryHit<'a> {
    pub query_id: &'a str,
    #[serde(flatten)]
    pub hit: &'a Hit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(rank: usize, id: &str, text: &str) -> Hit {
        Hit {
            rank,
            id: id.to_string(),
            doc_id: None,
            score: 1.0 / rank as f32,
            rerank_score: None,
            text: text.to_string(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn a_long_id_widens_its_column_and_the_texts_stay_aligned() {
        let hits = [
            hit(1, "short", "first"),
            hit(2, "a-document-id-longer-than-sixteen#3", "second"),
        ];
        assert_eq!(
            format_hits(&hits, false),
            "rank     score  id                                   text\n   \
             1    1.0000  short                                first\n   \
             2    0.5000  a-document-id-longer-than-sixteen#3  second\n"
        );
    }
}
