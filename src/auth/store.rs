//! The security tables of `system.db` (migration 0002): users, roles, API keys, token families,
//! refresh tokens. Synchronous functions run through `SystemDb::call`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::api::types::{ApiKeyInfo, Role, User};
use crate::api::{Permission, ROLES};
use crate::error::{Error, Result};

pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(super) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Makes the built-in roles match `schema/api.yaml` (their permissions may change between versions).
pub(super) fn sync_builtin_roles(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction()?;
    for role in ROLES {
        tx.execute(
            "INSERT INTO roles (name, description, built_in) VALUES (?1, ?2, 1)
             ON CONFLICT(name) DO UPDATE SET description = excluded.description, built_in = 1",
            params![role.name, role.description],
        )?;
        tx.execute("DELETE FROM role_permissions WHERE role = ?1", [role.name])?;
        for p in role.permissions {
            tx.execute(
                "INSERT INTO role_permissions (role, permission) VALUES (?1, ?2)",
                params![role.name, p.as_str()],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn count_users(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

// ---- users ---------------------------------------------------------------------------------

pub(super) fn validate_username(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "username must be 1 to 64 letters, digits, `.`, `_` or `-`".into(),
        ))
    }
}

pub(super) fn create_user(
    conn: &mut Connection,
    username: &str,
    password_hash: &str,
    roles: &[String],
    disabled: bool,
) -> Result<User> {
    validate_username(username)?;
    let tx = conn.transaction()?;
    let id = format!("usr_{}", uuid::Uuid::new_v4().simple());
    let now = now();
    tx.execute(
        "INSERT INTO users (id, username, password_hash, disabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id, username, password_hash, disabled, now],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::Conflict(format!("user `{username}` already exists"))
        } else {
            e.into()
        }
    })?;
    set_roles_in(&tx, &id, roles)?;
    tx.commit()?;
    get_user(conn, &id)
}

fn set_roles_in(conn: &Connection, user_id: &str, roles: &[String]) -> Result<()> {
    conn.execute("DELETE FROM user_roles WHERE user_id = ?1", [user_id])?;
    for role in roles.iter().collect::<BTreeSet<_>>() {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM roles WHERE name = ?1)",
            [role],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(Error::Invalid(format!("unknown role `{role}`")));
        }
        conn.execute(
            "INSERT INTO user_roles (user_id, role) VALUES (?1, ?2)",
            params![user_id, role],
        )?;
    }
    Ok(())
}

pub(super) fn get_user(conn: &Connection, id: &str) -> Result<User> {
    let row = conn
        .query_row(
            "SELECT id, username, disabled, created_at, updated_at FROM users WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no user `{id}`")))?;
    Ok(User {
        roles: user_roles(conn, &row.0)?,
        id: row.0,
        username: row.1,
        disabled: row.2,
        created_at: parse_time(&row.3),
        updated_at: parse_time(&row.4),
    })
}

fn user_roles(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT role FROM user_roles WHERE user_id = ?1 ORDER BY role")?;
    let roles = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(roles)
}

pub(super) fn list_users(conn: &Connection, limit: i64, offset: i64) -> Result<(Vec<User>, i64)> {
    let total = count_users(conn)?;
    let mut stmt = conn.prepare("SELECT id FROM users ORDER BY username LIMIT ?1 OFFSET ?2")?;
    let ids: Vec<String> = stmt
        .query_map(params![limit, offset], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let users = ids
        .iter()
        .map(|id| get_user(conn, id))
        .collect::<Result<_>>()?;
    Ok((users, total))
}

/// Id, password hash and disabled flag of a username.
pub(super) fn find_login(
    conn: &Connection,
    username: &str,
) -> Result<Option<(String, String, bool)>> {
    Ok(conn
        .query_row(
            "SELECT id, password_hash, disabled FROM users WHERE username = ?1",
            [username],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

pub(super) struct UserChange {
    pub password_hash: Option<String>,
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

pub(super) fn update_user(conn: &mut Connection, id: &str, change: &UserChange) -> Result<User> {
    let tx = conn.transaction()?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(Error::NotFound(format!("no user `{id}`")));
    }
    if let Some(hash) = &change.password_hash {
        tx.execute(
            "UPDATE users SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
    }
    if let Some(disabled) = change.disabled {
        tx.execute(
            "UPDATE users SET disabled = ?2 WHERE id = ?1",
            params![id, disabled],
        )?;
    }
    if let Some(roles) = &change.roles {
        set_roles_in(&tx, id, roles)?;
    }
    tx.execute(
        "UPDATE users SET updated_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    ensure_an_admin_remains(&tx)?;
    if change.password_hash.is_some() || change.disabled == Some(true) {
        revoke_user_families(&tx, id, "credentials changed")?;
    }
    tx.commit()?;
    get_user(conn, id)
}

pub(super) fn delete_user(conn: &mut Connection, id: &str) -> Result<String> {
    let tx = conn.transaction()?;
    let username: String = tx
        .query_row("SELECT username FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no user `{id}`")))?;
    // Tokens, families and keys go with the user (ON DELETE CASCADE).
    tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
    ensure_an_admin_remains(&tx)?;
    tx.commit()?;
    Ok(username)
}

/// Refuses a change that leaves no enabled user holding `system:admin`: nobody could undo it.
fn ensure_an_admin_remains(conn: &Connection) -> Result<()> {
    let admins: i64 = conn.query_row(
        "SELECT count(DISTINCT u.id) FROM users u
         JOIN user_roles ur ON ur.user_id = u.id
         JOIN role_permissions rp ON rp.role = ur.role
         WHERE u.disabled = 0 AND rp.permission = ?1",
        [Permission::SystemAdmin.as_str()],
        |r| r.get(0),
    )?;
    if admins == 0 {
        return Err(Error::Conflict(
            "refused: no enabled user with system:admin would remain".into(),
        ));
    }
    Ok(())
}

/// Username, disabled flag, roles and the permissions they grant, read fresh so role changes
/// apply to tokens already issued.
pub(super) struct UserAccess {
    pub username: String,
    pub disabled: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<Permission>,
}

pub(super) fn user_access(conn: &Connection, user_id: &str) -> Result<Option<UserAccess>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.username, u.disabled, ur.role, rp.permission FROM users u
         LEFT JOIN user_roles ur ON ur.user_id = u.id
         LEFT JOIN role_permissions rp ON rp.role = ur.role
         WHERE u.id = ?1",
    )?;
    let mut rows = stmt.query([user_id])?;
    let mut access: Option<UserAccess> = None;
    let mut roles = BTreeSet::new();
    let mut permissions = BTreeSet::new();
    while let Some(row) = rows.next()? {
        if access.is_none() {
            access = Some(UserAccess {
                username: row.get(0)?,
                disabled: row.get(1)?,
                roles: Vec::new(),
                permissions: Vec::new(),
            });
        }
        if let Some(role) = row.get::<_, Option<String>>(2)? {
            roles.insert(role);
        }
        if let Some(p) = row
            .get::<_, Option<String>>(3)?
            .and_then(|p| Permission::parse(&p))
        {
            permissions.insert(p);
        }
    }
    Ok(access.map(|mut a| {
        a.roles = roles.into_iter().collect();
        a.permissions = permissions.into_iter().collect();
        a
    }))
}

// ---- roles ---------------------------------------------------------------------------------

fn check_permissions(permissions: &[String]) -> Result<()> {
    for p in permissions {
        if Permission::parse(p).is_none() {
            return Err(Error::Invalid(format!("unknown permission `{p}`")));
        }
    }
    Ok(())
}

pub(super) fn list_roles(conn: &Connection) -> Result<Vec<Role>> {
    let mut stmt = conn.prepare("SELECT name FROM roles ORDER BY built_in DESC, name")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names.iter().map(|n| get_role(conn, n)).collect()
}

pub(super) fn get_role(conn: &Connection, name: &str) -> Result<Role> {
    let (description, built_in): (String, bool) = conn
        .query_row(
            "SELECT description, built_in FROM roles WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no role `{name}`")))?;
    let mut stmt = conn
        .prepare("SELECT permission FROM role_permissions WHERE role = ?1 ORDER BY permission")?;
    let permissions = stmt
        .query_map([name], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Role {
        name: name.to_string(),
        description,
        permissions,
        built_in,
    })
}

pub(super) fn create_role(
    conn: &mut Connection,
    name: &str,
    description: &str,
    permissions: &[String],
) -> Result<Role> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    if !valid {
        return Err(Error::Invalid(
            "role name must be 1 to 64 lowercase letters, digits, `_` or `-`".into(),
        ));
    }
    check_permissions(permissions)?;
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO roles (name, description, built_in) VALUES (?1, ?2, 0)",
        params![name, description],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::Conflict(format!("role `{name}` already exists"))
        } else {
            e.into()
        }
    })?;
    for p in permissions.iter().collect::<BTreeSet<_>>() {
        tx.execute(
            "INSERT INTO role_permissions (role, permission) VALUES (?1, ?2)",
            params![name, p],
        )?;
    }
    tx.commit()?;
    get_role(conn, name)
}

fn custom_role(conn: &Connection, name: &str) -> Result<()> {
    if get_role(conn, name)?.built_in {
        return Err(Error::Conflict(format!(
            "role `{name}` is built in and cannot be changed"
        )));
    }
    Ok(())
}

pub(super) fn update_role(
    conn: &mut Connection,
    name: &str,
    description: Option<&str>,
    permissions: Option<&[String]>,
) -> Result<Role> {
    custom_role(conn, name)?;
    let tx = conn.transaction()?;
    if let Some(d) = description {
        tx.execute(
            "UPDATE roles SET description = ?2 WHERE name = ?1",
            params![name, d],
        )?;
    }
    if let Some(perms) = permissions {
        check_permissions(perms)?;
        tx.execute("DELETE FROM role_permissions WHERE role = ?1", [name])?;
        for p in perms.iter().collect::<BTreeSet<_>>() {
            tx.execute(
                "INSERT INTO role_permissions (role, permission) VALUES (?1, ?2)",
                params![name, p],
            )?;
        }
    }
    ensure_an_admin_remains(&tx)?;
    tx.commit()?;
    get_role(conn, name)
}

pub(super) fn delete_role(conn: &mut Connection, name: &str) -> Result<()> {
    custom_role(conn, name)?;
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM roles WHERE name = ?1", [name])?;
    ensure_an_admin_remains(&tx)?;
    tx.commit()?;
    Ok(())
}

// ---- token families and refresh tokens -------------------------------------------------------

pub(super) fn create_family(conn: &Connection, family: &str, user_id: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO token_families (id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![family, user_id, now()],
    )?;
    Ok(())
}

pub(super) fn revoke_family(conn: &Connection, family: &str, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE token_families SET revoked_at = ?2, revoked_reason = ?3
         WHERE id = ?1 AND revoked_at IS NULL",
        params![family, now(), reason],
    )?;
    Ok(())
}

fn revoke_user_families(conn: &Connection, user_id: &str, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE token_families SET revoked_at = ?2, revoked_reason = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now(), reason],
    )?;
    Ok(())
}

/// When the login of a family happened.
pub(super) fn family_created_at(conn: &Connection, family: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(conn
        .prepare_cached("SELECT created_at FROM token_families WHERE id = ?1")?
        .query_row([family], |r| r.get::<_, String>(0))
        .optional()?
        .map(|t| parse_time(&t)))
}

/// Whether a login family is still live: it exists and is not revoked.
pub(super) fn family_live(conn: &Connection, family: &str, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT revoked_at IS NULL FROM token_families WHERE id = ?1 AND user_id = ?2",
        )?
        .query_row(params![family, user_id], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

pub(super) fn insert_refresh(
    conn: &Connection,
    jti: &str,
    family: &str,
    expires_at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO refresh_tokens (jti, family_id, expires_at) VALUES (?1, ?2, ?3)",
        params![jti, family, expires_at],
    )?;
    Ok(())
}

pub(super) enum RefreshUse {
    /// First use: the token is now spent.
    Fresh,
    /// Already spent: someone replays it.
    Reused,
    /// Not issued here, or its family is gone.
    Unknown,
}

/// Marks a refresh token used, atomically, and says whether it was fresh.
pub(super) fn use_refresh(conn: &Connection, jti: &str, family: &str) -> Result<RefreshUse> {
    let updated = conn.execute(
        "UPDATE refresh_tokens SET used_at = ?3 WHERE jti = ?1 AND family_id = ?2 AND used_at IS NULL",
        params![jti, family, now()],
    )?;
    if updated == 1 {
        return Ok(RefreshUse::Fresh);
    }
    let known: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = ?1 AND family_id = ?2)",
        params![jti, family],
        |r| r.get(0),
    )?;
    Ok(if known {
        RefreshUse::Reused
    } else {
        RefreshUse::Unknown
    })
}

// ---- API keys ------------------------------------------------------------------------------

pub(super) struct NewKey<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a [u8],
    pub expires_at: Option<DateTime<Utc>>,
}

pub(super) fn insert_key(conn: &Connection, key: &NewKey<'_>) -> Result<ApiKeyInfo> {
    let id = format!("key_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    conn.execute(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            key.user_id,
            key.name,
            key.prefix,
            key.hash,
            now(),
            key.expires_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        ],
    )?;
    get_key(conn, key.user_id, &id)
}

const KEY_COLUMNS: &str =
    "id, name, prefix, created_at, expires_at, last_used_at, revoked_at IS NOT NULL";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        created_at: parse_time(&r.get::<_, String>(3)?),
        expires_at: r.get::<_, Option<String>>(4)?.map(|t| parse_time(&t)),
        last_used_at: r.get::<_, Option<String>>(5)?.map(|t| parse_time(&t)),
        revoked: r.get(6)?,
    })
}

pub(super) fn list_keys(conn: &Connection, user_id: &str) -> Result<Vec<ApiKeyInfo>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id"
    ))?;
    let keys = stmt
        .query_map([user_id], key_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(keys)
}

pub(super) fn get_key(conn: &Connection, user_id: &str, id: &str) -> Result<ApiKeyInfo> {
    conn.query_row(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 AND id = ?2"),
        params![user_id, id],
        key_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("no API key `{id}`")))
}

pub(super) fn revoke_key(conn: &Connection, user_id: &str, id: &str) -> Result<()> {
    get_key(conn, user_id, id)?;
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?3 WHERE user_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        params![user_id, id, now()],
    )?;
    Ok(())
}

/// A stored key found by its hash.
pub(super) struct StoredKey {
    pub id: String,
    pub user_id: String,
    pub hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub(super) fn find_key(conn: &Connection, hash: &[u8]) -> Result<Option<StoredKey>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id, key_hash, expires_at, revoked_at IS NOT NULL, last_used_at
             FROM api_keys WHERE key_hash = ?1",
        )?
        .query_row([hash], |r| {
            Ok(StoredKey {
                id: r.get(0)?,
                user_id: r.get(1)?,
                hash: r.get(2)?,
                expires_at: r.get::<_, Option<String>>(3)?.map(|t| parse_time(&t)),
                revoked: r.get(4)?,
                last_used_at: r.get::<_, Option<String>>(5)?.map(|t| parse_time(&t)),
            })
        })
        .optional()?)
}

/// Whether a key still authenticates: not revoked, not expired. `None` if it no longer exists.
pub(super) fn key_live(conn: &Connection, id: &str) -> Result<Option<bool>> {
    Ok(conn
        .query_row(
            "SELECT revoked_at IS NULL, expires_at FROM api_keys WHERE id = ?1",
            [id],
            |r| Ok((r.get::<_, bool>(0)?, r.get::<_, Option<String>>(1)?)),
        )
        .optional()?
        .map(|(not_revoked, expires)| {
            not_revoked && expires.is_none_or(|t| parse_time(&t) > Utc::now())
        }))
}

pub(super) fn touch_key(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(())
}
