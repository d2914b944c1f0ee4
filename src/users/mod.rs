//! Staff users: the people who sign in to Rapport and the account managers customers are
//! assigned to. Admins manage them; every change is audited.

pub mod json;
mod routes;
pub mod rules;
pub mod store;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::audit;
use crate::auth::{Actor, password};
use crate::db::DbPool;
use crate::http::error::ApiError;
use crate::http::etag::IfMatch;
use crate::journal::{self, Change};
use json::User;
use rules::{UserChanges, ValidNewUser};
use store::UserUpdate;

pub use routes::configure;

/// Checks that `id`, given in `field`, names an active staff user (an account manager, an
/// interaction's staff member or an assignee must be one): `422` naming the field otherwise.
pub async fn check_active(
    conn: &mut AsyncPgConnection,
    field: &str,
    id: uuid::Uuid,
) -> Result<(), ApiError> {
    let active = crate::auth::store::user_access(conn, id)
        .await?
        .is_some_and(|access| access.active);
    if active {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be the id of an active staff user",
        ))
    }
}

/// Which customers `actor` reaches now, for work done in their name outside a request (an
/// import job run in the background): a user's stored access (a user no longer found reaches
/// only what they manage); clients and the service reach all.
pub async fn customer_access(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
) -> Result<crate::auth::CustomerAccess, ApiError> {
    use crate::auth::{AccessLevel, CustomerAccess};
    Ok(match actor {
        Actor::User(id) => {
            let level = crate::auth::store::user_access(conn, *id)
                .await?
                .map_or(AccessLevel::Owned, |a| a.access);
            CustomerAccess::of_user(*id, level)
        }
        Actor::Client(_) | Actor::Service(_) => CustomerAccess::All,
    })
}

/// Creates a user and audits it, in one transaction. Shared by the API and `rapport user create`.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: ValidNewUser,
) -> Result<User, ApiError> {
    let has_password = input.password.is_some();
    let password_hash = match input.password {
        Some(password) => Some(password::hash(password.into_inner()).await?),
        None => None,
    };
    let row = store::NewUserRow {
        id: uuid::Uuid::now_v7(),
        email: input.email,
        name: input.name,
        role: input.role,
        access: input.access,
        password_hash,
    };
    conn.transaction(async |conn| {
        let user = User::from(store::insert(conn, &row).await?);
        let mut changes = audit::created(&user);
        if has_password {
            changes = audit::redacted(changes, "password");
        }
        journal::record(
            conn,
            actor,
            Change::audited("user.created", "user", user.id, changes),
        )
        .await?;
        Ok(user)
    })
    .await
}

/// Changes a user's email, name, role, access or password, audited as `user.updated`. The
/// caller forgets the user's cached access after (their tokens end with a change).
pub async fn update(
    pool: &DbPool,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    changes: UserChanges,
) -> Result<User, ApiError> {
    apply(pool, actor, id, if_match, changes, None).await
}

/// Deactivates (`false`) or reactivates (`true`) a user, audited as `user.deactivated` or
/// `user.reactivated`; nothing when they already are. The caller forgets the user's cached
/// access after.
pub async fn set_active(
    pool: &DbPool,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    active: bool,
) -> Result<User, ApiError> {
    apply(
        pool,
        actor,
        id,
        if_match,
        UserChanges::default(),
        Some(active),
    )
    .await
}

/// Applies validated changes (and an activity change) under the row lock, audited. The
/// password is hashed before a connection is taken.
async fn apply(
    pool: &DbPool,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    changes: UserChanges,
    active: Option<bool>,
) -> Result<User, ApiError> {
    let password_hash = match changes.password {
        Some(p) => Some(password::hash(p.into_inner()).await?),
        None => None,
    };
    let mut update = UserUpdate {
        email: changes.email,
        name: changes.name,
        role: changes.role,
        access: changes.access,
        password_hash,
        ..UserUpdate::default()
    };
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        store::lock_admin_set(conn).await?;
        let before = store::lock(conn, id)
            .await?
            .map(User::from)
            .ok_or_else(|| ApiError::not_found("user"))?;
        if_match.check(before.version)?;
        if let Some(active) = rules::activity_change(&before, active) {
            update.active = Some(active);
            update.deactivated_at = Some((!active).then(Utc::now));
        }
        if rules::loses_admin(&before, &update) && store::other_active_admins(conn, id).await? == 0
        {
            return Err(ApiError::conflict(
                "this is the last active admin; make another user admin first",
            ));
        }
        rules::check_access_after(&before, &update)?;
        if rules::changes_nothing(&before, &update) {
            return Ok(before);
        }
        let after = User::from(store::update(conn, id, &update).await?);
        let mut diff = audit::diff(&before, &after);
        if update.password_hash.is_some() {
            diff = audit::redacted(diff, "password");
        }
        journal::record(
            conn,
            actor,
            Change::audited(rules::action(&update), "user", id, diff),
        )
        .await?;
        Ok(after)
    })
    .await
}
