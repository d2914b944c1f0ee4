//! Staff users: the people who sign in to Rapport and the account managers customers are
//! assigned to. Admins manage them; every change is audited.

pub mod json;
mod routes;
pub mod store;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::audit;
use crate::auth::{Actor, password};
use crate::http::error::ApiError;
use json::{User, ValidNewUser};

pub use routes::configure;

/// Checks that `id`, given in `field`, names an active staff user (an account manager, an
/// interaction's staff member or an assignee must be one): `422` naming the field otherwise.
pub async fn check_active(
    conn: &mut AsyncPgConnection,
    field: &str,
    id: uuid::Uuid,
) -> Result<(), ApiError> {
    let active = store::access(conn, id)
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
            let level = store::access(conn, *id)
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
        email: input.email.into_inner(),
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
        audit::record(
            conn,
            actor,
            "user.created",
            "user",
            &user.id.to_string(),
            changes,
        )
        .await?;
        Ok(user)
    })
    .await
}
