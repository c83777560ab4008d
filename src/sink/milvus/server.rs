//! What the Milvus server behind a connection can do, from its version:
//! asked before anything is created, so a pipeline the server cannot serve
//! is refused (exit 2) instead of half made.

/// A server's `major.minor.patch`, and the text it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub text: String,
    /// `None` when the text is not a version (then nothing is refused).
    pub number: Option<(u32, u32, u32)>,
}

/// A feature some Milvus versions lack, with the first version that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    SparseVectors,
    ServerBm25,
    NullableFields,
}

impl Feature {
    pub fn since(self) -> (u32, u32) {
        match self {
            Feature::SparseVectors => (2, 4),
            Feature::ServerBm25 | Feature::NullableFields => (2, 5),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Feature::SparseVectors => "sparse vectors (a bm25 or splade stage)",
            Feature::ServerBm25 => "`bm25: server` (Milvus' BM25 function)",
            Feature::NullableFields => "nullable fields",
        }
    }
}

impl ServerVersion {
    /// `v2.3.5-lite`, `2.5.0`, `v2.6.0-rc1` → (2, 3, 5), …
    pub fn parse(text: &str) -> Self {
        let digits = text.trim().trim_start_matches(['v', 'V']);
        let mut parts = digits
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(str::parse::<u32>);
        let number = match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), patch) => {
                Some((major, minor, patch.and_then(Result::ok).unwrap_or(0)))
            }
            _ => None,
        };
        ServerVersion {
            text: text.to_string(),
            number,
        }
    }

    pub fn has(&self, feature: Feature) -> bool {
        self.number
            .is_none_or(|(major, minor, _)| (major, minor) >= feature.since())
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_their_prefixes_and_suffixes() {
        assert_eq!(ServerVersion::parse("v2.3.5-lite").number, Some((2, 3, 5)));
        assert_eq!(ServerVersion::parse("2.5.0").number, Some((2, 5, 0)));
        assert_eq!(ServerVersion::parse("v2.6-dev").number, Some((2, 6, 0)));
        assert_eq!(ServerVersion::parse("unknown").number, None);
    }

    #[test]
    fn features_arrive_with_their_versions() {
        let v23 = ServerVersion::parse("v2.3.5-lite");
        assert!(!v23.has(Feature::SparseVectors));
        assert!(!v23.has(Feature::NullableFields));
        let v24 = ServerVersion::parse("v2.4.17");
        assert!(v24.has(Feature::SparseVectors));
        assert!(!v24.has(Feature::ServerBm25));
        let v25 = ServerVersion::parse("v2.5.4");
        assert!(v25.has(Feature::ServerBm25) && v25.has(Feature::NullableFields));
        assert!(ServerVersion::parse("?").has(Feature::ServerBm25));
    }
}
