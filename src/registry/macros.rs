//! `components!`: from one line per component, the family's enum, its
//! `type:` names, the tag dispatch and the dispatch to the family's trait.

/// Declares a family of `type:`-tagged components:
///
/// ```text
/// components! {
///     /// One entry of `stages:`.
///     pub(crate) enum StageConfig: StageComponent {
///         Chunk(ChunkStageConfig),
///         Dense(DenseStageConfig),
///     }
/// }
/// ```
///
/// Each config type implements the family's trait (its `kind()` is the
/// `type:` name) and `Deserialize`. The enum gets `component()` (the config
/// as `&dyn Family`), `catalog()` (each `type:` with its keys) and
/// an implementation of `config::Tagged`, which the loader uses to read a
/// tagged mapping with every error located.
macro_rules! components {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $family:ident {
            $($variant:ident($config:ty),)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant)]
        $vis enum $name {
            $($variant($config),)+
        }

        impl $name {
            /// This component through its family's trait.
            $vis fn component(&self) -> &dyn $family {
                match self {
                    $($name::$variant(config) => config,)+
                }
            }

            /// Joins its relative paths to the pipeline file's directory.
            $vis fn rebase(&mut self, base: &std::path::Path) {
                match self {
                    $($name::$variant(config) => {
                        $crate::config::RelativePaths::rebase(config, base)
                    })+
                }
            }

            /// Its `type:` (not every family's callers need it).
            #[allow(dead_code)]
            $vis fn kind(&self) -> &'static str {
                match self {
                    $($name::$variant(_) => <$config as $family>::kind(),)+
                }
            }

            /// Every registered component of the family: its `type:` and
            /// the keys of its config (read from the config's `Deserialize`).
            $vis fn catalog() -> Vec<(&'static str, &'static [&'static str])> {
                vec![$((
                    <$config as $family>::kind(),
                    serde_aux::serde_introspection::serde_introspect::<$config>(),
                ),)+]
            }
        }

        impl $crate::config::Tagged for $name {
            fn kinds() -> Vec<&'static str> {
                vec![$(<$config as $family>::kind(),)+]
            }

            fn from_kind(
                kind: &str,
                node: &marked_yaml::Node,
            ) -> Option<Result<Self, marked_yaml::FromNodeError>> {
                $(
                    if kind == <$config as $family>::kind() {
                        return Some(marked_yaml::from_node::<$config>(node).map($name::$variant));
                    }
                )+
                None
            }
        }
    };
}

pub(crate) use components;
