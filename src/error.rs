//! The one split every command's errors fall into: found while setting up
//! (the pipeline file, or what it points at, is wrong or missing: exit 2) or
//! while running (exit 1). Components do not classify their own errors: the
//! caller knows which phase it is in.

/// An error, and the phase it happened in.
#[derive(Debug, thiserror::Error)]
pub enum Phased<E: std::error::Error + 'static> {
    /// While building: reading the config, opening sources, loading models,
    /// connecting to and checking the destination.
    #[error(transparent)]
    Setup(E),
    /// While records were flowing.
    #[error(transparent)]
    Run(E),
}

impl<E: std::error::Error + 'static> Phased<E> {
    pub fn setup(error: impl Into<E>) -> Self {
        Phased::Setup(error.into())
    }

    pub fn run(error: impl Into<E>) -> Self {
        Phased::Run(error.into())
    }

    /// The same phase, the error wrapped into a caller's error type.
    pub fn convert<F: std::error::Error + From<E>>(self) -> Phased<F> {
        match self {
            Phased::Setup(e) => Phased::Setup(e.into()),
            Phased::Run(e) => Phased::Run(e.into()),
        }
    }

    /// 2 for set-up errors, 1 for run-time ones.
    pub fn exit_code(&self) -> u8 {
        match self {
            Phased::Setup(_) => 2,
            Phased::Run(_) => 1,
        }
    }

    pub fn inner(&self) -> &E {
        match self {
            Phased::Setup(e) | Phased::Run(e) => e,
        }
    }
}

/// The error and its causes on one line, `outer: cause: cause`, each text
/// once: a cause whose text the message before it already contains (as some
/// libraries' errors do) is not repeated.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    with_causes(error.to_string(), error.source())
}

/// `head`, then each cause in `cause`'s chain by the same rule as [`report`].
pub(crate) fn with_causes(
    head: String,
    mut cause: Option<&(dyn std::error::Error + 'static)>,
) -> String {
    let mut line = head.clone();
    let mut previous = head;
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !previous.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        previous = text;
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner problem")]
    struct Inner;

    /// Like some libraries' errors: shows its source and also chains it.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error: {0}")]
    struct Repeating(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("upsert on `docs` failed")]
    struct Outer(#[source] Repeating);

    #[test]
    fn causes_are_joined_once_each() {
        assert_eq!(
            report(&Outer(Repeating(Inner))),
            "upsert on `docs` failed: transport error: inner problem"
        );
    }

    #[test]
    fn phases_map_to_exit_codes_and_show_only_the_error() {
        let setup: Phased<Outer> = Phased::Setup(Outer(Repeating(Inner)));
        assert_eq!(setup.exit_code(), 2);
        assert_eq!(
            report(&setup),
            "upsert on `docs` failed: transport error: inner problem"
        );
        assert_eq!(Phased::Run(Inner).exit_code(), 1);
    }
}
