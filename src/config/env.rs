//! `${VAR}` and `${VAR:-default}` expansion inside YAML string values, and
//! the settings read straight from the environment.

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ExpandError {
    #[error("environment variable `{0}` is not set (write `${{{0}:-default}}` to give a default)")]
    Unset(String),
    #[error("unterminated `${{` in `{0}`")]
    Unterminated(String),
    #[error("invalid variable name `{0}`")]
    BadName(String),
}

/// A positive duration from the environment variable `var`, counted in
/// units of `unit` (`$VECPIPE_COMMIT_INTERVAL_MS` in milliseconds, …); else `default`.
pub(crate) fn duration_var(
    var: &str,
    unit: std::time::Duration,
    default: std::time::Duration,
) -> std::time::Duration {
    std::env::var(var)
        .ok()
        .and_then(|value| value.parse::<f64>().ok())
        .filter(|value| *value > 0.0)
        .map_or(default, |value| unit.mul_f64(value))
}

/// Expands `${VAR}`, `${VAR:-default}` and the escape `$$` using `lookup`.
pub(super) fn expand(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| ExpandError::Unterminated(input.to_string()))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ExpandError::BadName(name.to_string()));
            }
            match (lookup(name), default) {
                (Some(value), _) if !value.is_empty() || default.is_none() => out.push_str(&value),
                (_, Some(default)) => out.push_str(default),
                (None, None) => return Err(ExpandError::Unset(name.to_string())),
                (Some(value), None) => out.push_str(&value),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("kafka:9092".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn set_variable_is_substituted() {
        assert_eq!(
            expand("tcp://${HOST}/x", &env).unwrap(),
            "tcp://kafka:9092/x"
        );
    }

    #[test]
    fn default_used_when_unset_or_empty() {
        assert_eq!(expand("${NOPE:-a.db}", &env).unwrap(), "a.db");
        assert_eq!(expand("${EMPTY:-b}", &env).unwrap(), "b");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
    }

    #[test]
    fn unset_without_default_is_an_error_naming_the_variable() {
        assert_eq!(
            expand("${NOPE}", &env),
            Err(ExpandError::Unset("NOPE".into()))
        );
    }

    #[test]
    fn dollar_escapes_and_plain_dollars_stay() {
        assert_eq!(expand("cost $$5 and $x", &env).unwrap(), "cost $5 and $x");
    }

    #[test]
    fn unterminated_brace_is_an_error() {
        assert!(matches!(
            expand("${HOST", &env),
            Err(ExpandError::Unterminated(_))
        ));
    }
}
