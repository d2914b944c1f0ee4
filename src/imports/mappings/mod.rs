//! Import mappings: how another system's file becomes a resource's rows. A mapping is given
//! with an import (inline, as a preset, or by the id of a saved one); saved mappings are
//! versioned (every version stays readable) and audited. An import keeps a copy of the
//! mapping it ran with, so a resumed job maps as its first run did.

pub mod json;
pub mod presets;
mod routes;
pub mod rules;
pub mod store;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;
use uuid::Uuid;

use crate::audit;
use crate::auth::Actor;
use crate::http::error::{ApiError, FieldError};
use crate::http::etag::IfMatch;
use crate::http::validation::Checks;
use crate::imports::json::Resource;
use crate::journal::{self, Change};
use json::{
    AppliedMapping, ImportMapping, ImportMappingPatch, ImportMappingReplacement,
    ImportMappingVersion, MappingSpec, NewImportMapping, PresetKey,
};
pub use routes::configure;
pub use rules::Mapping;
use store::{Definition, MappingRecord, VersionRecord};

/// The spec as stored, read back (a spec that no longer reads is shown empty rather than
/// failing the read; every write checks it first).
fn spec_of(value: Value) -> MappingSpec {
    serde_json::from_value(value).unwrap_or_default()
}

/// The API view of a saved mapping.
pub fn view(record: MappingRecord) -> ImportMapping {
    ImportMapping {
        id: record.id,
        name: record.name,
        resource: record.resource,
        description: record.description,
        mapping: spec_of(record.spec),
        version: record.version,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// The API view of a version.
pub fn version_view(record: VersionRecord) -> ImportMappingVersion {
    ImportMappingVersion {
        mapping_id: record.mapping_id,
        version: record.version,
        name: record.name,
        description: record.description,
        mapping: spec_of(record.spec),
        created_at: record.created_at,
    }
}

/// Checks a mapping for a resource: `422` naming every problem, at `mapping.…`.
pub fn check(spec: &MappingSpec, resource: Resource) -> Result<Mapping, ApiError> {
    rules::check(spec, super::columns(resource)).map_err(|problems| {
        ApiError::validation(
            problems
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message))
                .collect(),
        )
    })
}

/// How an import names its mapping, as its query gives it.
#[derive(Debug, Default)]
pub struct Choice<'a> {
    /// The mapping itself, as JSON text.
    pub inline: Option<&'a str>,
    pub saved: Option<Uuid>,
    pub preset: Option<PresetKey>,
}

/// The mapping an import of `resource` runs with, checked: none, the inline one, a preset,
/// or a saved mapping's current version. At most one may be named.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    resource: Resource,
    choice: Choice<'_>,
) -> Result<Option<(AppliedMapping, Mapping)>, ApiError> {
    let named = [
        choice.inline.is_some(),
        choice.saved.is_some(),
        choice.preset.is_some(),
    ];
    if named.iter().filter(|n| **n).count() > 1 {
        return Err(crate::http::query::invalid(
            "mapping",
            "name one mapping: `mapping`, `mapping_id` or `preset`",
        ));
    }
    let applied = if let Some(text) = choice.inline {
        let spec: MappingSpec = crate::http::json::parse(text.as_bytes()).map_err(|err| {
            let errors: Vec<FieldError> = err
                .errors()
                .iter()
                .map(|e| FieldError::new(format!("mapping.{}", e.field), e.message.clone()))
                .collect();
            if errors.is_empty() {
                crate::http::query::invalid(
                    "mapping",
                    format!(
                        "must be a JSON mapping: {}",
                        err.problem().detail.unwrap_or_default()
                    ),
                )
            } else {
                ApiError::validation(errors)
            }
        })?;
        AppliedMapping {
            preset: None,
            mapping_id: None,
            version: None,
            spec,
        }
    } else if let Some(key) = choice.preset {
        let preset =
            presets::get(key).ok_or_else(|| ApiError::invalid_field("preset", "no such preset"))?;
        if preset.resource != resource {
            return Err(ApiError::invalid_field(
                "preset",
                format!("`{key}` imports {}, not {resource}", preset.resource),
            ));
        }
        AppliedMapping {
            preset: Some(key),
            mapping_id: None,
            version: None,
            spec: preset.mapping.clone(),
        }
    } else if let Some(id) = choice.saved {
        let record = store::get(conn, id)
            .await?
            .ok_or_else(|| ApiError::invalid_field("mapping_id", "names no saved mapping"))?;
        if record.resource != resource {
            return Err(ApiError::invalid_field(
                "mapping_id",
                format!("the mapping imports {}, not {resource}", record.resource),
            ));
        }
        AppliedMapping {
            preset: None,
            mapping_id: Some(record.id),
            version: Some(record.version),
            spec: spec_of(record.spec),
        }
    } else {
        return Ok(None);
    };
    let mapping = check(&applied.spec, resource)?;
    Ok(Some((applied, mapping)))
}

/// A mapping an import stored, checked again (for the job that runs it).
pub fn stored(value: &Value, resource: Resource) -> Result<Mapping, String> {
    let applied: AppliedMapping = serde_json::from_value(value.clone())
        .map_err(|_| "the import's mapping cannot be read".to_owned())?;
    rules::check(&applied.spec, super::columns(resource)).map_err(|problems| {
        problems
            .into_iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The stored form of a spec.
fn stored_spec(spec: &MappingSpec) -> Result<Value, ApiError> {
    serde_json::to_value(spec).map_err(ApiError::internal)
}

/// Saves a new mapping (or a copy of a preset), at version 1.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: NewImportMapping,
    may_write: impl Fn(Resource) -> Result<(), ApiError> + Sync,
) -> Result<MappingRecord, ApiError> {
    let mut checks = Checks::new();
    let name = checks.check("name", rules::name(&input.name));
    let description = checks.check(
        "description",
        rules::description(input.description.as_deref()),
    );
    let preset = input.preset.and_then(presets::get);
    let resource = match (input.resource, preset) {
        (Some(resource), Some(preset)) if resource != preset.resource => {
            checks.fail(
                "resource",
                format!("the preset imports {}", preset.resource),
            );
            None
        }
        (Some(resource), _) => Some(resource),
        (None, Some(preset)) => Some(preset.resource),
        (None, None) => {
            checks.fail("resource", "is required (or a `preset` to copy)");
            None
        }
    };
    let spec = match (input.mapping, preset) {
        (Some(spec), _) => Some(spec),
        (None, Some(preset)) => Some(preset.mapping.clone()),
        (None, None) => {
            checks.fail("mapping", "is required (or a `preset` to copy)");
            None
        }
    };
    checks.finish()?;
    let (Some(name), Some(description), Some(resource), Some(spec)) =
        (name, description, resource, spec)
    else {
        return Err(ApiError::internal("validation passed without a value"));
    };
    may_write(resource)?;
    check(&spec, resource)?;
    let spec = stored_spec(&spec)?;
    conn.transaction(async |conn| {
        let definition = Definition {
            name: &name,
            description: description.as_deref(),
            spec: &spec,
        };
        let record = store::insert(conn, resource, &definition).await?;
        let shown = view(record.clone());
        journal::record(
            conn,
            actor,
            Change::audited(
                "import_mapping.created",
                "import_mapping",
                record.id,
                audit::created(&shown),
            ),
        )
        .await?;
        Ok(record)
    })
    .await
}

/// What a change makes of a mapping.
enum Edit {
    Patch(ImportMappingPatch),
    Replace(ImportMappingReplacement),
}

/// Changes a mapping (a merge patch, or a whole replacement): a new version when anything
/// changed, kept with the others.
async fn edit(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    change: Edit,
    may_write: impl Fn(Resource) -> Result<(), ApiError> + Sync,
) -> Result<MappingRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = store::lock(conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("import mapping"))?;
        may_write(before.resource)?;
        if_match.check(before.version)?;
        let mut checks = Checks::new();
        let (name, description, spec) = match change {
            Edit::Replace(whole) => (
                checks.check("name", rules::name(&whole.name)),
                checks.check(
                    "description",
                    rules::description(whole.description.as_deref()),
                ),
                Some(whole.mapping),
            ),
            Edit::Patch(patch) => {
                let name = match patch.name.required() {
                    Err(message) => {
                        checks.fail("name", message);
                        None
                    }
                    Ok(None) => Some(before.name.clone()),
                    Ok(Some(name)) => checks.check("name", rules::name(&name)),
                };
                let description = match patch.description {
                    crate::http::patch::Patch::Absent => Some(before.description.clone()),
                    crate::http::patch::Patch::Null => Some(None),
                    crate::http::patch::Patch::Value(text) => {
                        checks.check("description", rules::description(Some(&text)))
                    }
                };
                let spec = match patch.mapping {
                    None => Some(spec_of(before.spec.clone())),
                    Some(Value::Object(changes)) => {
                        let mut merged = before.spec.clone();
                        rules::merge_patch(&mut merged, &Value::Object(changes));
                        match serde_json::from_value::<MappingSpec>(merged) {
                            Ok(spec) => Some(spec),
                            Err(err) => {
                                checks.fail(
                                    "mapping",
                                    format!("is not a mapping once merged: {err}"),
                                );
                                None
                            }
                        }
                    }
                    Some(_) => {
                        checks.fail("mapping", "must be an object (a merge patch of the rules)");
                        None
                    }
                };
                (name, description, spec)
            }
        };
        checks.finish()?;
        let (Some(name), Some(description), Some(spec)) = (name, description, spec) else {
            return Err(ApiError::internal("validation passed without a value"));
        };
        check(&spec, before.resource)?;
        let spec = stored_spec(&spec)?;
        if name == before.name && description == before.description && spec == before.spec {
            return Ok(before);
        }
        let definition = Definition {
            name: &name,
            description: description.as_deref(),
            spec: &spec,
        };
        let after = store::update(conn, id, &definition).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "import_mapping.updated",
                "import_mapping",
                id,
                audit::diff(&view(before), &view(after.clone())),
            ),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Changes a mapping by a merge patch.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    patch: ImportMappingPatch,
    may_write: impl Fn(Resource) -> Result<(), ApiError> + Sync,
) -> Result<MappingRecord, ApiError> {
    edit(conn, actor, id, if_match, Edit::Patch(patch), may_write).await
}

/// Replaces a mapping as a whole.
pub async fn replace(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    whole: ImportMappingReplacement,
    may_write: impl Fn(Resource) -> Result<(), ApiError> + Sync,
) -> Result<MappingRecord, ApiError> {
    edit(conn, actor, id, if_match, Edit::Replace(whole), may_write).await
}

/// Deletes a mapping with its versions; imports that ran with it keep their copy.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    may_write: impl Fn(Resource) -> Result<(), ApiError> + Sync,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        let before = store::lock(conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("import mapping"))?;
        may_write(before.resource)?;
        if_match.check(before.version)?;
        store::delete(conn, id).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "import_mapping.deleted",
                "import_mapping",
                id,
                serde_json::json!({"name": before.name, "version": before.version}),
            ),
        )
        .await?;
        Ok(())
    })
    .await
}
