//! Saved mappings and their versions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::Prepare;
use crate::db::schema::{import_mapping_versions, import_mappings};
use crate::imports::json::Resource;

/// A saved mapping's row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = import_mappings)]
pub struct MappingRecord {
    pub id: Uuid,
    pub name: String,
    pub resource: Resource,
    pub description: Option<String>,
    pub spec: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version's row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = import_mapping_versions)]
pub struct VersionRecord {
    pub mapping_id: Uuid,
    pub version: i64,
    pub name: String,
    pub description: Option<String>,
    pub spec: Value,
    pub created_at: DateTime<Utc>,
}

/// What a saved mapping says.
pub struct Definition<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub spec: &'a Value,
}

/// Keeps the version a mapping is at now, to read later.
async fn keep_version(conn: &mut AsyncPgConnection, record: &MappingRecord) -> QueryResult<()> {
    diesel::insert_into(import_mapping_versions::table)
        .values((
            import_mapping_versions::mapping_id.eq(record.id),
            import_mapping_versions::version.eq(record.version),
            import_mapping_versions::name.eq(&record.name),
            import_mapping_versions::description.eq(&record.description),
            import_mapping_versions::spec.eq(&record.spec),
            import_mapping_versions::created_at.eq(record.updated_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Inserts a mapping at version 1, with its first version kept.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    resource: Resource,
    definition: &Definition<'_>,
) -> QueryResult<MappingRecord> {
    let record = diesel::insert_into(import_mappings::table)
        .values((
            import_mappings::id.eq(Uuid::now_v7()),
            import_mappings::name.eq(definition.name),
            import_mappings::resource.eq(resource),
            import_mappings::description.eq(definition.description),
            import_mappings::spec.eq(definition.spec),
        ))
        .returning(MappingRecord::as_returning())
        .get_result(conn)
        .await?;
    keep_version(conn, &record).await?;
    Ok(record)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<MappingRecord>> {
    import_mappings::table
        .find(id)
        .select(MappingRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// The mapping, locked until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<MappingRecord>> {
    import_mappings::table
        .find(id)
        .select(MappingRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Writes a new version of a mapping, and keeps it.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    definition: &Definition<'_>,
) -> QueryResult<MappingRecord> {
    let record = diesel::update(import_mappings::table.find(id))
        .set((
            import_mappings::name.eq(definition.name),
            import_mappings::description.eq(definition.description),
            import_mappings::spec.eq(definition.spec),
            import_mappings::version.eq(import_mappings::version + 1),
            import_mappings::updated_at.eq(diesel::dsl::now),
        ))
        .returning(MappingRecord::as_returning())
        .get_result(conn)
        .await?;
    keep_version(conn, &record).await?;
    Ok(record)
}

/// Deletes a mapping and its versions (imports keep their own copy of what they ran).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(import_mappings::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Mappings of the given resources, oldest first (ids are time-ordered), after `after`;
/// served by the primary key, or `import_mappings_resource_idx` for one resource.
pub async fn list(
    conn: &mut AsyncPgConnection,
    resources: &[Resource],
    after: Option<Uuid>,
    fetch: i64,
) -> QueryResult<Vec<MappingRecord>> {
    let mut query = import_mappings::table.into_boxed();
    query = match resources {
        [one] => query.filter(import_mappings::resource.eq(*one)),
        many => query.filter(import_mappings::resource.eq_any(many.to_vec())),
    };
    if let Some(after) = after {
        query = query.filter(import_mappings::id.gt(after));
    }
    query
        .order(import_mappings::id.asc())
        .select(MappingRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// A mapping's versions, newest first, before `before`.
pub async fn versions(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    before: Option<i64>,
    fetch: i64,
) -> QueryResult<Vec<VersionRecord>> {
    let mut query = import_mapping_versions::table
        .filter(import_mapping_versions::mapping_id.eq(id))
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(import_mapping_versions::version.lt(before));
    }
    query
        .order(import_mapping_versions::version.desc())
        .select(VersionRecord::as_select())
        .limit(fetch)
        .load(conn)
        .await
}

pub async fn version(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: i64,
) -> QueryResult<Option<VersionRecord>> {
    import_mapping_versions::table
        .find((id, version))
        .select(VersionRecord::as_select())
        .first(conn)
        .await
        .optional()
}
