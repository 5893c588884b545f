//! Tablespaces: named directories holding database files, recorded in `system.db`. The built-in
//! `default` is `<data_dir>/databases` and is not stored. Which database is in which tablespace
//! is not recorded: the engine finds the files in the directories (see `Engine::open`).

use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::engine::SystemDb;
use crate::engine::catalog::{DEFAULT_TABLESPACE, Engine, validate_name};
use crate::error::{Error, Result};

/// A stored tablespace.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub path: PathBuf,
    pub description: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub struct Tablespaces {
    system_db: SystemDb,
    data_dir: PathBuf,
    /// Serializes tablespace changes with the database creations and moves that depend on
    /// them, so a tablespace cannot be deleted while a database is being put in it.
    pub guard: tokio::sync::Mutex<()>,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Tablespaces {
    pub fn new(system_db: SystemDb, data_dir: &Path) -> Tablespaces {
        Tablespaces {
            system_db,
            data_dir: data_dir.to_path_buf(),
            guard: tokio::sync::Mutex::new(()),
        }
    }

    /// The stored tablespaces, by name.
    pub async fn list(&self) -> Result<Vec<Record>> {
        self.system_db
            .call(|c| {
                let mut stmt = c.prepare(
                    "SELECT name, path, description, created_at, updated_at FROM tablespaces ORDER BY name",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(Record {
                        name: r.get(0)?,
                        path: PathBuf::from(r.get::<_, String>(1)?),
                        description: r.get(2)?,
                        created_at: parse_time(&r.get::<_, String>(3)?),
                        updated_at: parse_time(&r.get::<_, String>(4)?),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    /// The `default` tablespace, as a record.
    pub fn default_record(engine: &Engine) -> Record {
        Record {
            name: DEFAULT_TABLESPACE.to_string(),
            path: engine.default_dir().to_path_buf(),
            description: "The data directory's databases/ folder".to_string(),
            created_at: None,
            updated_at: None,
        }
    }

    /// Every tablespace, `default` first.
    pub async fn all(&self, engine: &Engine) -> Result<Vec<Record>> {
        let mut all = vec![Tablespaces::default_record(engine)];
        all.extend(self.list().await?);
        Ok(all)
    }

    /// The named tablespace, `default` included.
    pub async fn get(&self, engine: &Engine, name: &str) -> Result<Record> {
        self.all(engine)
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::NotFound(format!("no tablespace `{name}`")))
    }

    pub async fn create(
        &self,
        engine: &Engine,
        name: &str,
        path: &str,
        description: &str,
    ) -> Result<Record> {
        validate_name(name).map_err(|_| {
            Error::Invalid(format!(
                "tablespace name `{name}`: 1 to 63 lowercase letters, digits or `_`, starting with a letter"
            ))
        })?;
        let all = self.all(engine).await?;
        if all.iter().any(|t| t.name == name) {
            return Err(Error::Conflict(format!(
                "tablespace `{name}` already exists"
            )));
        }
        let dir = self.checked_dir(path, &all).await?;
        let now = Utc::now().to_rfc3339();
        let (key, description) = (name.to_string(), description.to_string());
        let dir_text = dir.display().to_string();
        self.system_db
            .call(move |c| {
                c.execute(
                    "INSERT INTO tablespaces (name, path, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    (&key, &dir_text, &description, &now),
                )?;
                Ok(())
            })
            .await?;
        self.get(engine, name).await
    }

    /// Changes the description, and the path while no database lives in the tablespace.
    pub async fn update(
        &self,
        engine: &Engine,
        name: &str,
        path: Option<&str>,
        description: Option<&str>,
    ) -> Result<Record> {
        if name == DEFAULT_TABLESPACE {
            return Err(Error::Conflict(
                "the `default` tablespace cannot be changed".into(),
            ));
        }
        let current = self.get(engine, name).await?;
        let mut new_path = current.path.clone();
        if let Some(path) = path {
            let held = databases_in(engine, name);
            if !held.is_empty() {
                return Err(Error::Conflict(format!(
                    "tablespace `{name}` holds {}; move them before changing its path",
                    held.join(", ")
                )));
            }
            let others: Vec<Record> = self
                .all(engine)
                .await?
                .into_iter()
                .filter(|t| t.name != name)
                .collect();
            new_path = self.checked_dir(path, &others).await?;
        }
        let description = description.map_or(current.description, str::to_string);
        let (name, path_text, now) = (
            name.to_string(),
            new_path.display().to_string(),
            Utc::now().to_rfc3339(),
        );
        let key = name.clone();
        self.system_db
            .call(move |c| {
                c.execute(
                    "UPDATE tablespaces SET path = ?2, description = ?3, updated_at = ?4 WHERE name = ?1",
                    (&key, &path_text, &description, &now),
                )?;
                Ok(())
            })
            .await?;
        self.get(engine, &name).await
    }

    /// Deletes a tablespace that holds no database; its directory stays.
    pub async fn delete(&self, engine: &Engine, name: &str) -> Result<()> {
        if name == DEFAULT_TABLESPACE {
            return Err(Error::Conflict(
                "the `default` tablespace cannot be deleted".into(),
            ));
        }
        self.get(engine, name).await?;
        let held = databases_in(engine, name);
        if !held.is_empty() {
            return Err(Error::Conflict(format!(
                "tablespace `{name}` holds {}; move or delete them first",
                held.join(", ")
            )));
        }
        let name = name.to_string();
        self.system_db
            .call(move |c| {
                c.execute("DELETE FROM tablespaces WHERE name = ?1", [&name])?;
                Ok(())
            })
            .await
    }

    /// Validates `raw` as a new tablespace directory beside `others`, creating it if needed.
    async fn checked_dir(&self, raw: &str, others: &[Record]) -> Result<PathBuf> {
        let (raw, data_dir) = (PathBuf::from(raw), self.data_dir.clone());
        let others: Vec<(String, PathBuf)> = others
            .iter()
            .map(|t| (t.name.clone(), t.path.clone()))
            .collect();
        tokio::task::spawn_blocking(move || checked_dir(&raw, &data_dir, &others)).await?
    }
}

/// Names of the databases whose file is in tablespace `name`.
pub fn databases_in(engine: &Engine, name: &str) -> Vec<String> {
    engine
        .list()
        .into_iter()
        .filter(|db| db.tablespace == name)
        .map(|db| db.name.clone())
        .collect()
}

fn overlapping<'a>(dir: &Path, others: &'a [(String, PathBuf)]) -> Option<&'a str> {
    others.iter().find_map(|(name, other)| {
        let other = other.canonicalize().unwrap_or_else(|_| other.clone());
        (dir.starts_with(&other) || other.starts_with(dir)).then_some(name.as_str())
    })
}

/// The checks of a tablespace directory (blocking): absolute, no `..`, not overlapping another
/// tablespace, the data directory or an ancestor of it, created if missing, a writable directory
/// holding no `.db` file. Overlap is checked on the path as given and again once symlinks are
/// resolved.
fn checked_dir(raw: &Path, data_dir: &Path, others: &[(String, PathBuf)]) -> Result<PathBuf> {
    let shown = raw.display();
    if !raw.is_absolute() {
        return Err(Error::Invalid(format!(
            "tablespace path `{shown}` must be absolute"
        )));
    }
    if raw.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::Invalid(format!(
            "tablespace path `{shown}` may not contain `..`"
        )));
    }
    let check = |dir: &Path| -> Result<()> {
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        if data_dir.starts_with(dir) {
            return Err(Error::Invalid(format!(
                "tablespace path `{shown}` is the data directory or contains it"
            )));
        }
        if let Some(other) = overlapping(dir, others) {
            return Err(Error::Conflict(format!(
                "tablespace path `{shown}` overlaps tablespace `{other}`"
            )));
        }
        Ok(())
    };
    check(raw)?;
    std::fs::create_dir_all(raw)
        .map_err(|e| Error::Invalid(format!("tablespace path `{shown}` cannot be created: {e}")))?;
    let dir = raw
        .canonicalize()
        .map_err(|e| Error::Invalid(format!("tablespace path `{shown}`: {e}")))?;
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "tablespace path `{shown}` is not a directory"
        )));
    }
    check(&dir)?;
    let probe = dir.join(format!(".rustydb-probe-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&probe, b"probe")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| Error::Invalid(format!("tablespace path `{shown}` is not writable: {e}")))?;
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Error::Invalid(format!("tablespace path `{shown}`: {e}")))?;
    if entries
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "db"))
    {
        return Err(Error::Conflict(format!(
            "tablespace path `{shown}` already holds .db files"
        )));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_parent_and_nested_paths_are_refused() {
        let tmp = std::env::temp_dir().join(format!("rustydb-ts-{}", uuid::Uuid::new_v4()));
        let data = tmp.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let others = vec![("fast".to_string(), tmp.join("fast"))];
        std::fs::create_dir_all(tmp.join("fast")).unwrap();
        let err = |p: &Path| checked_dir(p, &data, &others).unwrap_err();
        assert!(matches!(err(Path::new("rel/dir")), Error::Invalid(_)));
        assert!(matches!(err(&tmp.join("a/../b")), Error::Invalid(_)));
        assert!(
            matches!(err(&tmp), Error::Invalid(_)),
            "contains the data dir"
        );
        assert!(matches!(err(&tmp.join("fast/inner")), Error::Conflict(_)));
        let ok = checked_dir(&tmp.join("slow/x"), &data, &others).unwrap();
        assert!(ok.is_dir());
        std::fs::write(ok.join("a.db"), b"").unwrap();
        assert!(matches!(err(&ok), Error::Conflict(_)), "holds .db files");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
