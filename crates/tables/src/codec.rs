//! How tables live in the key-value store: the key of each record kind, and items as bytes.
//!
//! Every record kind has a one-byte (or two-byte) prefix, so one table's records of a kind are
//! one contiguous range:
//!
//! | prefix | record |
//! |---|---|
//! | `m\0` + name | the table's description ([`TableMeta`] as JSON) |
//! | `t\0` + name | the table's id and description version, 4 bytes each (checked by every write: the table was not re-created, its description not changed) |
//! | `n\0table-id` | the last table id handed out |
//! | `d` + id + key | an item, as DynamoDB JSON (answered as is by the hot reads) |
//! | `x` + id + index id + index key + item key | an index entry: the item's key as JSON |
//! | `e` + id + expiry + item key | a TTL entry |
//! | `c` + id | the table's statistics: item counts and sizes ([`crate::stats`]) |
//! | `k\0` + token | a transaction's ClientRequestToken |
//! | `s` + id + sequence | a stream record ([`crate::stream`]) |

use crate::catalog::TableMeta;
use crate::error::DbError;
use crate::storage::{Batch, Read, StorageError};
use crate::value::{item_from_json, item_to_json, Item};

pub(crate) const META_PREFIX: &[u8] = b"m\x00";
pub(crate) const ID_COUNTER: &[u8] = b"n\x00table-id";
const TOKEN_PREFIX: &[u8] = b"k\x00";

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    let mut k = META_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn id_key(name: &str) -> Vec<u8> {
    let mut k = b"t\x00".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// Store a table's description and its identity (id and version) record.
pub(crate) fn store_meta(b: &mut dyn Batch, meta: &TableMeta) -> Result<(), StorageError> {
    b.put(&meta_key(&meta.name), &serde_json::to_vec(meta).unwrap_or_default())?;
    let mut identity = meta.id.to_be_bytes().to_vec();
    identity.extend_from_slice(&meta.version.to_be_bytes());
    b.put(&id_key(&meta.name), &identity)
}

/// The id and description version of an identity record (stores from before versions hold
/// the id alone: version 0).
pub(crate) fn decode_identity(bytes: &[u8]) -> Option<(u32, u32)> {
    let id = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let version = match bytes.get(4..8) {
        Some(v) => u32::from_be_bytes(v.try_into().ok()?),
        None => 0,
    };
    Some((id, version))
}

pub(crate) fn token_key(token: &str) -> Vec<u8> {
    let mut k = TOKEN_PREFIX.to_vec();
    k.extend_from_slice(token.as_bytes());
    k
}

pub(crate) fn decode_item(bytes: &[u8]) -> Result<Item, DbError> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DbError::internal(format!("corrupt item: {e}")))?;
    item_from_json(&json)
}

pub(crate) fn encode_item(item: &Item) -> Vec<u8> {
    serde_json::to_vec(&item_to_json(item)).unwrap_or_default()
}

/// Read an item by key through any reader.
pub(crate) fn read_item(r: &dyn Read, meta: &TableMeta, key: &Item) -> Result<Option<Item>, StorageError> {
    match r.get(&meta.item_key(key))? {
        Some(bytes) => Ok(decode_item(&bytes).ok()),
        None => Ok(None),
    }
}

/// A storage error as the client sees it (the detail goes to the log).
pub(crate) fn storage_err(e: StorageError) -> DbError {
    tracing::error!("{e}");
    DbError::internal("Internal server error")
}
