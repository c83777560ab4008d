//! The bottom layer of the pipeline YAML: reading it with places kept,
//! `${VAR}` expansion, located errors, tag dispatch and primitives. Which
//! components exist is the registry's business (`crate::registry`).

mod env;
mod load;
mod relative;
mod types;

pub(crate) use env::duration_var;
pub use load::{ConfigError, Document, Located};
pub(crate) use load::{NodeError, Tagged, read_node, sequence, tagged};
pub(crate) use relative::{RelativePaths, rebase_model, rebase_optional, rebase_path, rebase_text};
pub use types::PositiveInt;
pub(crate) use types::{Invalid, Surroundings, yes};
