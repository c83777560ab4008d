//! The collection a pipeline writes: derived from the batches' Arrow schema,
//! created when missing, and checked against an existing collection.

use arrow::datatypes::{DataType as ArrowType, Schema};
use milvus::v2::prelude::{
    CollectionSchema, DataType, FieldSchema, Function, FunctionType, IndexParam, IndexType,
    MetricType,
};

use super::{Bm25Mode, MilvusSinkConfig, VectorKind};
use super::{Feature, MilvusError};
use crate::batch::columns;

/// Longest chunk id / document id Milvus will accept from us.
pub(super) const ID_MAX_LENGTH: u32 = 512;
/// A fingerprint: 128 bits in hex.
pub(super) const FINGERPRINT_LENGTH: u32 = 32;
/// VARCHAR metadata is stored up to this many bytes.
pub(super) const METADATA_MAX_LENGTH: u32 = 65_535;

/// Elements an ARRAY field holds at most (Milvus' own limit).
pub(super) const ARRAY_CAPACITY: u32 = 4_096;
/// A timestamp, date or time as ISO 8601 text.
pub(super) const TIME_TEXT_LENGTH: u32 = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldKind {
    PrimaryKey,
    VarChar(u32),
    Int64,
    Double,
    Bool,
    Json,
    /// A list of scalars: Milvus' ARRAY (JSON on 2.3 holds objects only).
    Array(Element),
    FloatVector(u32),
    SparseVector,
}

/// The scalar an ARRAY field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    VarChar,
    Int64,
    Double,
    Bool,
}

impl Element {
    /// The element kind of a list of `item`s, when it is a scalar.
    fn of(item: &ArrowType) -> Option<Self> {
        match item {
            ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => Some(Element::VarChar),
            t if t.is_integer() => Some(Element::Int64),
            t if t.is_floating() => Some(Element::Double),
            ArrowType::Boolean => Some(Element::Bool),
            _ => None,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Element::VarChar => DataType::VarChar,
            Element::Int64 => DataType::Int64,
            Element::Double => DataType::Double,
            Element::Bool => DataType::Bool,
        }
    }

    /// The Arrow type a list's items are cast to before they are sent.
    pub(crate) fn arrow_type(self) -> ArrowType {
        match self {
            Element::VarChar => ArrowType::Utf8,
            Element::Int64 => ArrowType::Int64,
            Element::Double => ArrowType::Float64,
            Element::Bool => ArrowType::Boolean,
        }
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldKind::PrimaryKey => write!(f, "VARCHAR primary key"),
            FieldKind::VarChar(n) => write!(f, "VARCHAR({n})"),
            FieldKind::Int64 => write!(f, "INT64"),
            FieldKind::Double => write!(f, "DOUBLE"),
            FieldKind::Bool => write!(f, "BOOL"),
            FieldKind::Json => write!(f, "JSON"),
            FieldKind::Array(element) => write!(f, "ARRAY<{element:?}>"),
            FieldKind::FloatVector(d) => write!(f, "FLOAT_VECTOR({d})"),
            FieldKind::SparseVector => write!(f, "SPARSE_FLOAT_VECTOR"),
        }
    }
}

/// One Milvus field and the batch column it comes from (`None`: computed by Milvus).
#[derive(Debug, Clone)]
pub(crate) struct PlannedField {
    pub name: String,
    pub kind: FieldKind,
    pub nullable: bool,
    pub column: Option<usize>,
}

/// The collection layout for a pipeline's batches.
#[derive(Debug, Clone)]
pub(crate) struct CollectionPlan {
    pub fields: Vec<PlannedField>,
    pub server_bm25: bool,
    pub has_chunks: bool,
}

impl CollectionPlan {
    pub(crate) fn from_batch_schema(
        schema: &Schema,
        cfg: &MilvusSinkConfig,
    ) -> Result<Self, MilvusError> {
        let server_bm25 = cfg.bm25 == Bm25Mode::Server;
        let mut fields = Vec::new();
        for (index, field) in schema.fields().iter().enumerate() {
            let name = field.name().as_str();
            if server_bm25 && name == cfg.sparse_field {
                // Milvus computes this field from `text`.
                continue;
            }
            let kind = match (name, field.data_type()) {
                (columns::ID, _) => FieldKind::PrimaryKey,
                (columns::DOC_ID, _) => FieldKind::VarChar(ID_MAX_LENGTH),
                (columns::CHUNK_INDEX, _) => FieldKind::Int64,
                (columns::FINGERPRINT, _) => FieldKind::VarChar(FINGERPRINT_LENGTH),
                (columns::TEXT, _) => FieldKind::VarChar(cfg.text_max_length.get() as u32),
                (_, ArrowType::FixedSizeList(item, dim))
                    if item.data_type() == &ArrowType::Float32 =>
                {
                    FieldKind::FloatVector(*dim as u32)
                }
                (_, t) if *t == crate::batch::sparse::data_type() => FieldKind::SparseVector,
                (_, ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View) => {
                    FieldKind::VarChar(METADATA_MAX_LENGTH)
                }
                (_, ArrowType::Dictionary(_, values))
                    if matches!(values.as_ref(), ArrowType::Utf8 | ArrowType::LargeUtf8) =>
                {
                    FieldKind::VarChar(METADATA_MAX_LENGTH)
                }
                (_, t) if t.is_temporal() => FieldKind::VarChar(TIME_TEXT_LENGTH),
                (_, t) if t.is_integer() => FieldKind::Int64,
                (_, t) if t.is_floating() || t.is_decimal() => FieldKind::Double,
                (_, ArrowType::Boolean) => FieldKind::Bool,
                (
                    _,
                    ArrowType::List(item)
                    | ArrowType::LargeList(item)
                    | ArrowType::FixedSizeList(item, _),
                ) => Element::of(item.data_type()).map_or(FieldKind::Json, FieldKind::Array),
                _ => FieldKind::Json,
            };
            let nullable = !matches!(
                kind,
                FieldKind::PrimaryKey | FieldKind::FloatVector(_) | FieldKind::SparseVector
            ) && ![
                columns::DOC_ID,
                columns::CHUNK_INDEX,
                columns::TEXT,
                columns::FINGERPRINT,
            ]
            .contains(&name);
            fields.push(PlannedField {
                name: name.to_string(),
                kind,
                nullable,
                column: Some(index),
            });
        }
        if server_bm25 {
            fields.push(PlannedField {
                name: cfg.sparse_field.clone(),
                kind: FieldKind::SparseVector,
                nullable: false,
                column: None,
            });
        }
        if !fields
            .iter()
            .any(|f| matches!(f.kind, FieldKind::FloatVector(_) | FieldKind::SparseVector))
        {
            return Err(MilvusError::NoVectors {
                collection: cfg.collection.clone(),
            });
        }
        Ok(CollectionPlan {
            has_chunks: schema.column_with_name(columns::DOC_ID).is_some()
                && schema.column_with_name(columns::CHUNK_INDEX).is_some(),
            fields,
            server_bm25,
        })
    }

    pub(crate) fn collection_schema(&self) -> CollectionSchema {
        let mut schema = CollectionSchema::new();
        for field in &self.fields {
            let mut f = FieldSchema::new().name(field.name.clone());
            f = match &field.kind {
                FieldKind::PrimaryKey => f
                    .data_type(DataType::VarChar)
                    .max_length(ID_MAX_LENGTH)
                    .primary_key(true),
                FieldKind::VarChar(n) => {
                    let f = f.data_type(DataType::VarChar).max_length(*n);
                    if self.server_bm25 && field.name == columns::TEXT {
                        f.enable_analyzer(true)
                    } else {
                        f
                    }
                }
                FieldKind::Int64 => f.data_type(DataType::Int64),
                FieldKind::Double => f.data_type(DataType::Double),
                FieldKind::Bool => f.data_type(DataType::Bool),
                FieldKind::Json => f.data_type(DataType::Json),
                FieldKind::Array(element) => {
                    let f = f
                        .data_type(DataType::Array)
                        .element_type(element.data_type())
                        .max_capacity(ARRAY_CAPACITY);
                    if *element == Element::VarChar {
                        f.max_length(METADATA_MAX_LENGTH)
                    } else {
                        f
                    }
                }
                FieldKind::FloatVector(d) => f.data_type(DataType::FloatVector).dimension(*d),
                FieldKind::SparseVector => f.data_type(DataType::SparseFloatVector),
            };
            if field.nullable {
                f = f.nullable(true);
            }
            schema = schema.add_field(f);
        }
        if self.server_bm25 {
            let sparse = self.sparse_field().unwrap_or_default();
            schema = schema.add_function(
                Function::new()
                    .name("vecpipe_bm25")
                    .function_type(FunctionType::Bm25)
                    .input_fields([columns::TEXT])
                    .output_fields([sparse]),
            );
        }
        schema
    }

    pub(crate) fn index_params(
        &self,
        cfg: &MilvusSinkConfig,
    ) -> Result<Vec<IndexParam>, MilvusError> {
        let mut params = Vec::new();
        for field in &self.fields {
            let vectors = match field.kind {
                FieldKind::FloatVector(_) => VectorKind::Dense,
                FieldKind::SparseVector => VectorKind::Sparse,
                _ => continue,
            };
            let spec = cfg.index.spec(vectors);
            let mut metric = metric_type(&spec.metric(vectors), vectors)?;
            if self.server_bm25 && field.kind == FieldKind::SparseVector {
                metric = MetricType::Bm25;
            }
            let build = spec
                .build_params(vectors)
                .into_iter()
                .map(|(k, v)| (k, param_text(&v)))
                .collect();
            params.push(
                IndexParam::new()
                    .field_name(field.name.clone())
                    .index_type(index_type(&spec.kind(vectors), vectors)?)
                    .metric_type(metric)
                    .extra_params(build),
            );
        }
        Ok(params)
    }

    /// The server features this layout needs (nullable fields are wanted,
    /// not needed: see `without_nullable`).
    pub(crate) fn needs(&self) -> Vec<Feature> {
        let mut needs = Vec::new();
        if self.server_bm25 {
            needs.push(Feature::ServerBm25);
        }
        if self.sparse_field().is_some() {
            needs.push(Feature::SparseVectors);
        }
        needs
    }

    /// For servers without nullable fields: every field is created
    /// required (a missing value is written as its type's empty value);
    /// returns the fields that would have been nullable.
    pub(crate) fn without_nullable(&mut self) -> Vec<String> {
        let mut optional = Vec::new();
        for field in self.fields.iter_mut().filter(|f| f.nullable) {
            field.nullable = false;
            optional.push(format!("`{}`", field.name));
        }
        optional
    }

    pub(crate) fn sparse_field(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.kind == FieldKind::SparseVector)
            .map(|f| f.name.as_str())
    }

    /// Leaves out the fingerprint when `existing` (created before
    /// incremental runs) has no field for it: such a collection keeps
    /// working, and no document is skipped as unchanged.
    pub(crate) fn fit_to(&mut self, existing: &CollectionSchema) {
        let has = |name: &str| existing.get_fields().iter().any(|f| f.get_name() == name);
        if !has(columns::FINGERPRINT) {
            self.fields.retain(|f| f.name != columns::FINGERPRINT);
        }
    }

    /// An error naming both schemas when `existing` cannot take these rows.
    pub(crate) fn check(
        &self,
        collection: &str,
        existing: &CollectionSchema,
    ) -> Result<(), MilvusError> {
        let mut problems = Vec::new();
        for field in &self.fields {
            match existing
                .get_fields()
                .iter()
                .find(|f| f.get_name() == field.name)
            {
                None => problems.push(format!("field `{}` is missing", field.name)),
                Some(actual) => {
                    let actual_kind = describe(actual);
                    let fits = match (&field.kind, &actual_kind) {
                        (FieldKind::VarChar(_), FieldKind::VarChar(_)) => true,
                        (a, b) => a == b,
                    };
                    if !fits {
                        problems.push(format!(
                            "field `{}` is {actual_kind} in Milvus, the pipeline writes {}",
                            field.name, field.kind
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let show = |fields: Vec<String>| fields.join(", ");
        Err(MilvusError::SchemaMismatch {
            collection: collection.to_string(),
            problems: problems.join("; "),
            milvus: show(
                existing
                    .get_fields()
                    .iter()
                    .map(|f| format!("{} {}", f.get_name(), describe(f)))
                    .collect(),
            ),
            pipeline: show(
                self.fields
                    .iter()
                    .map(|f| format!("{} {}", f.name, f.kind))
                    .collect(),
            ),
        })
    }
}

fn describe(field: &FieldSchema) -> FieldKind {
    match field.get_data_type() {
        DataType::VarChar if field.is_primary_key() => FieldKind::PrimaryKey,
        DataType::VarChar => FieldKind::VarChar(field.get_max_length()),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => FieldKind::Int64,
        DataType::Float | DataType::Double => FieldKind::Double,
        DataType::Bool => FieldKind::Bool,
        DataType::FloatVector => FieldKind::FloatVector(field.get_dimension()),
        DataType::SparseFloatVector => FieldKind::SparseVector,
        DataType::Array => match field.get_element_type() {
            Some(DataType::VarChar) => FieldKind::Array(Element::VarChar),
            Some(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => {
                FieldKind::Array(Element::Int64)
            }
            Some(DataType::Float | DataType::Double) => FieldKind::Array(Element::Double),
            Some(DataType::Bool) => FieldKind::Array(Element::Bool),
            _ => FieldKind::Json,
        },
        _ => FieldKind::Json,
    }
}

/// A parameter as Milvus takes it in key-value pairs: numbers and strings bare.
pub(crate) fn param_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn index_type(name: &str, vectors: VectorKind) -> Result<IndexType, MilvusError> {
    Ok(match name {
        "AUTOINDEX" => IndexType::AutoIndex,
        "FLAT" => IndexType::Flat,
        "IVF_FLAT" => IndexType::IvfFlat,
        "HNSW" => IndexType::Hnsw,
        "DISKANN" => IndexType::DiskAnn,
        "SPARSE_INVERTED_INDEX" => IndexType::SparseInvertedIndex,
        other => {
            return Err(MilvusError::Config(format!(
                "index.{}.type `{other}` is not supported (AUTOINDEX, FLAT, IVF_FLAT, HNSW, DISKANN, SPARSE_INVERTED_INDEX)",
                vectors.key()
            )));
        }
    })
}

fn metric_type(name: &str, vectors: VectorKind) -> Result<MetricType, MilvusError> {
    Ok(match name {
        "COSINE" => MetricType::Cosine,
        "IP" => MetricType::Ip,
        "L2" => MetricType::L2,
        "BM25" => MetricType::Bm25,
        other => {
            return Err(MilvusError::Config(format!(
                "index.{}.metric `{other}` is not supported (COSINE, IP, L2, BM25)",
                vectors.key()
            )));
        }
    })
}
