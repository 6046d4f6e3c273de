//! What `sylph server` keeps about deployed services: one record per service and stage (its
//! API id, the version it serves, its aliases), every version published (the resolved service
//! and its files), the access keys, and which service owns each table. (Accepted asynchronous
//! events are the event sources' own store: `sylph-events`.)
//!
//! [`ControlStore`] is the narrow boundary the server uses; [`RedbStore`] (one embedded redb
//! file, every change one fsynced transaction) is the default. A shared external database is
//! meant to be a second implementation of the same trait.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::keys::Key;
use crate::package::FileEntry;

/// The store could not be read or written; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("control store: {0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// One deployed service and stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub name: String,
    pub stage: String,
    pub region: String,
    /// Its own API base, as API Gateway gives each API an id: `{api_id}.<domain>` and
    /// `/apis/{api_id}/` on the server. Chosen at the first deploy, kept until it is removed.
    pub api_id: String,
    /// The version requests go to (moved by a deploy and by a rollback).
    pub active: u32,
    /// The highest version ever published (version numbers are never reused).
    pub latest: u32,
    /// Named pointers to versions, with an optional weighted second version (canaries).
    #[serde(default)]
    pub aliases: BTreeMap<String, Alias>,
    /// Unix seconds.
    pub created: u64,
    pub updated: u64,
}

/// A Lambda-style alias: a version, and optionally a share of traffic for another one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub version: u32,
    /// `(version, share)`: that share of requests (0 < share < 1) goes to that version.
    pub additional: Option<(u32, f64)>,
}

/// One published version: what was deployed, by whom, and its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub number: u32,
    /// The resolved service; `root` is meaningless here (the server places the code).
    pub service: sylph_model::Service,
    pub files: Vec<FileEntry>,
    /// The key that deployed it.
    pub deployed_by: String,
    /// Unix seconds.
    pub created: u64,
}

/// The control plane's durable state. Every method is one transaction: it happens entirely
/// or not at all, and once it returns `Ok` it survives a crash.
pub trait ControlStore: Send + Sync {
    fn keys(&self) -> Result<Vec<Key>, StoreError>;
    fn put_key(&self, key: &Key) -> Result<(), StoreError>;
    fn services(&self) -> Result<Vec<ServiceRecord>, StoreError>;
    fn service(&self, name: &str, stage: &str) -> Result<Option<ServiceRecord>, StoreError>;
    fn version(&self, name: &str, stage: &str, number: u32) -> Result<Option<VersionRecord>, StoreError>;
    /// Every version number kept for a service, ascending.
    fn version_numbers(&self, name: &str, stage: &str) -> Result<Vec<u32>, StoreError>;
    /// Write `record`, and `version` with it when given, together.
    fn publish(&self, record: &ServiceRecord, version: Option<&VersionRecord>) -> Result<(), StoreError>;
    /// Forget a service and all its versions.
    fn remove_service(&self, name: &str, stage: &str) -> Result<(), StoreError>;
    /// Which service each table belongs to (kept after a removal that retained the table, so
    /// that only that service takes it back).
    fn table_owners(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Record (or, with `None`, forget) the service `table` belongs to.
    fn set_table_owner(&self, table: &str, owner: Option<&str>) -> Result<(), StoreError>;
}

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
/// Keyed `{name}/{stage}/{number:010}`, so one service's versions sort together and in order.
const VERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("versions");
/// Table name → the service it belongs to.
const TABLE_OWNERS: TableDefinition<&str, &str> = TableDefinition::new("table_owners");

fn service_key(name: &str, stage: &str) -> String {
    format!("{name}/{stage}")
}

fn version_key(name: &str, stage: &str, number: u32) -> String {
    format!("{name}/{stage}/{number:010}")
}

/// The embedded control store: one redb file.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Open (or create) `path`. Fails if another process has it open.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(err)?;
        let txn = db.begin_write().map_err(err)?;
        for table in [KEYS, SERVICES, VERSIONS] {
            txn.open_table(table).map_err(err)?;
        }
        txn.open_table(TABLE_OWNERS).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(RedbStore { db })
    }

    fn all<T: for<'de> Deserialize<'de>>(&self, table: TableDefinition<&str, &[u8]>) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(table).map_err(err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(err)? {
            let (_, v) = entry.map_err(err)?;
            out.push(serde_json::from_slice(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    fn get<T: for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(table).map_err(err)?;
        match t.get(key).map_err(err)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(err)?)),
            None => Ok(None),
        }
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(err)
}

impl ControlStore for RedbStore {
    fn keys(&self) -> Result<Vec<Key>, StoreError> {
        self.all(KEYS)
    }

    fn put_key(&self, key: &Key) -> Result<(), StoreError> {
        let bytes = to_json(key)?;
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(KEYS)
            .map_err(err)?
            .insert(key.id.as_str(), bytes.as_slice())
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    fn services(&self) -> Result<Vec<ServiceRecord>, StoreError> {
        self.all(SERVICES)
    }

    fn service(&self, name: &str, stage: &str) -> Result<Option<ServiceRecord>, StoreError> {
        self.get(SERVICES, &service_key(name, stage))
    }

    fn version(&self, name: &str, stage: &str, number: u32) -> Result<Option<VersionRecord>, StoreError> {
        self.get(VERSIONS, &version_key(name, stage, number))
    }

    fn version_numbers(&self, name: &str, stage: &str) -> Result<Vec<u32>, StoreError> {
        let prefix = format!("{}/", service_key(name, stage));
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(VERSIONS).map_err(err)?;
        let mut out = Vec::new();
        for entry in t.range(prefix.as_str()..).map_err(err)? {
            let (k, _) = entry.map_err(err)?;
            let Some(n) = k.value().strip_prefix(prefix.as_str()) else {
                break;
            };
            out.push(n.parse().map_err(err)?);
        }
        Ok(out)
    }

    fn publish(&self, record: &ServiceRecord, version: Option<&VersionRecord>) -> Result<(), StoreError> {
        let record_bytes = to_json(record)?;
        let version_bytes = version.map(to_json).transpose()?;
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut services = txn.open_table(SERVICES).map_err(err)?;
            services
                .insert(
                    service_key(&record.name, &record.stage).as_str(),
                    record_bytes.as_slice(),
                )
                .map_err(err)?;
            if let (Some(v), Some(bytes)) = (version, version_bytes) {
                let mut versions = txn.open_table(VERSIONS).map_err(err)?;
                versions
                    .insert(
                        version_key(&record.name, &record.stage, v.number).as_str(),
                        bytes.as_slice(),
                    )
                    .map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }

    fn table_owners(&self) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.db.begin_read().map_err(err)?;
        let t = txn.open_table(TABLE_OWNERS).map_err(err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_owned(), v.value().to_owned()));
        }
        Ok(out)
    }

    fn set_table_owner(&self, table: &str, owner: Option<&str>) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut t = txn.open_table(TABLE_OWNERS).map_err(err)?;
            match owner {
                Some(o) => {
                    t.insert(table, o).map_err(err)?;
                }
                None => {
                    t.remove(table).map_err(err)?;
                }
            }
        }
        txn.commit().map_err(err)
    }

    fn remove_service(&self, name: &str, stage: &str) -> Result<(), StoreError> {
        let numbers = self.version_numbers(name, stage)?;
        let txn = self.db.begin_write().map_err(err)?;
        {
            txn.open_table(SERVICES)
                .map_err(err)?
                .remove(service_key(name, stage).as_str())
                .map_err(err)?;
            let mut versions = txn.open_table(VERSIONS).map_err(err)?;
            for n in numbers {
                versions.remove(version_key(name, stage, n).as_str()).map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> sylph_model::Service {
        sylph_model::Service {
            name: name.into(),
            stage: "dev".into(),
            region: "us-east-1".into(),
            root: "/nowhere".into(),
            functions: Vec::new(),
            http_api_cors: None,
            resources: serde_json::Value::Null,
            custom: serde_json::Value::Null,
            package_patterns: Vec::new(),
            tables: Vec::new(),
            queues: Vec::new(),
            api_keys: Vec::new(),
            usage_plans: Vec::new(),
            node_build: None,
            python_requirements: None,
            websocket_route_selection: Vec::new(),
        }
    }

    #[test]
    fn versions_and_records_survive_a_reopen_and_removal_forgets_them() {
        let dir = std::env::temp_dir().join(format!("sylph-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.redb");
        let mut record = ServiceRecord {
            name: "todo".into(),
            stage: "dev".into(),
            region: "us-east-1".into(),
            api_id: "abc".into(),
            active: 0,
            latest: 0,
            aliases: BTreeMap::new(),
            created: 1,
            updated: 1,
        };
        {
            let store = RedbStore::open(&path).unwrap();
            for n in 1..=11 {
                record.active = n;
                record.latest = n;
                let v = VersionRecord {
                    number: n,
                    service: service("todo"),
                    files: Vec::new(),
                    deployed_by: "SYLKX".into(),
                    created: 2,
                };
                store.publish(&record, Some(&v)).unwrap();
            }
            // A neighbour whose name shares a prefix stays apart.
            let mut other = record.clone();
            other.name = "todo2".into();
            store.publish(&other, None).unwrap();
            store.put_key(&Key::new("ci", crate::keys::Scope::All, true)).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(
            store.version_numbers("todo", "dev").unwrap(),
            (1..=11).collect::<Vec<_>>()
        );
        assert_eq!(store.service("todo", "dev").unwrap().unwrap().active, 11);
        assert_eq!(store.version("todo", "dev", 3).unwrap().unwrap().service.name, "todo");
        assert_eq!(store.keys().unwrap().len(), 1);
        store.set_table_owner("todo-dev", Some("todo")).unwrap();
        store.set_table_owner("gone", Some("todo")).unwrap();
        store.set_table_owner("gone", None).unwrap();
        assert_eq!(
            store.table_owners().unwrap(),
            vec![("todo-dev".to_owned(), "todo".to_owned())]
        );
        store.remove_service("todo", "dev").unwrap();
        assert!(store.service("todo", "dev").unwrap().is_none());
        assert!(store.version_numbers("todo", "dev").unwrap().is_empty());
        assert!(store.service("todo2", "dev").unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
