//! Reads the YAML files under a schema directory. Parsing only; `validate` checks meaning.

use std::fs;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{CodegenError, Result};
use crate::model::{
    ApiFile, EventFamilyFile, RoutesFile, SubscriptionsFile, TypesFile, WebSocketsFile,
};

/// The parsed files, each with its path relative to the schema directory.
#[derive(Debug)]
pub struct SchemaFiles {
    pub api: (String, ApiFile),
    pub types: Vec<(String, TypesFile)>,
    pub routes: Vec<(String, RoutesFile)>,
    pub events: Vec<(String, EventFamilyFile)>,
    pub subscriptions: Vec<(String, SubscriptionsFile)>,
    pub websockets: Option<(String, WebSocketsFile)>,
}

pub fn load_dir(dir: &Path) -> Result<SchemaFiles> {
    Ok(SchemaFiles {
        api: parse_file(dir, "api.yaml")?,
        types: parse_folder(dir, "types")?,
        routes: parse_folder(dir, "routes")?,
        events: parse_folder(dir, "events")?,
        subscriptions: parse_folder(dir, "subscriptions")?,
        websockets: if dir.join("websockets.yaml").exists() {
            Some(parse_file(dir, "websockets.yaml")?)
        } else {
            None
        },
    })
}

/// Every schema file under `dir`, for build scripts that rerun when one changes.
pub fn schema_paths(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut paths = vec![dir.join("api.yaml")];
    for folder in ["types", "routes", "events", "subscriptions"] {
        paths.extend(yaml_files(&dir.join(folder))?);
    }
    let ws = dir.join("websockets.yaml");
    if ws.exists() {
        paths.push(ws);
    }
    Ok(paths)
}

fn parse_file<T: DeserializeOwned>(dir: &Path, rel: &str) -> Result<(String, T)> {
    let path = dir.join(rel);
    let text = fs::read_to_string(&path).map_err(|source| CodegenError::Io {
        path: path.clone(),
        source,
    })?;
    let parse_error = |e: yaml_serde::Error| CodegenError::Parse {
        file: rel.to_string(),
        message: e.to_string(),
    };
    // A mapping that repeats a key is an error, not "the last one wins": only yaml_serde's own
    // `Value` checks that, the serde_json maps of the model do not.
    yaml_serde::from_str::<yaml_serde::Value>(&text).map_err(parse_error)?;
    let value = yaml_serde::from_str(&text).map_err(parse_error)?;
    Ok((rel.to_string(), value))
}

fn parse_folder<T: DeserializeOwned>(dir: &Path, folder: &str) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for path in yaml_files(&dir.join(folder))? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let rel = format!("{folder}/{}", name.unwrap_or_default());
        out.push(parse_file(dir, &rel)?);
    }
    Ok(out)
}

/// `.yaml` files of a folder in name order (a missing folder has none).
fn yaml_files(folder: &Path) -> Result<Vec<std::path::PathBuf>> {
    if !folder.exists() {
        return Ok(Vec::new());
    }
    let entries = fs::read_dir(folder).map_err(|source| CodegenError::Io {
        path: folder.to_path_buf(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CodegenError::Io {
            path: folder.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}
