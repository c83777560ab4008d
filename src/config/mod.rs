//! The pipeline YAML: its schema ([`PipelineConfig`] and the component
//! configs), loading with environment expansion, and located errors.

mod env;
mod load;
mod types;

pub use load::{
    ConfigError, Located, Locator, STEMMER_LANGUAGES, load_pipeline_file,
    load_pipeline_file_located, load_pipeline_str,
};
pub use types::*;
