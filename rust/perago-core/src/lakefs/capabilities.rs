//! Which data path a transfer takes: through lakeFS, or directly to the object store with
//! presigned URLs, chosen from what the server's blockstore offers (`GET /config`).

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::client::{lakefs_json, LakeFsClient};
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::retry::with_retries;

/// The user's choice of data path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransferMode {
    /// Presigned when the blockstore offers it, else through lakeFS.
    #[default]
    Auto,
    /// Always presigned; a blockstore without presign support is an error.
    Presign,
    /// Always through the lakeFS server (one request per object, bytes proxied by lakeFS).
    ThroughLakeFs,
}

impl TransferMode {
    pub const NAMES: [&'static str; 3] = ["auto", "presign", "lakefs"];

    pub fn name(self) -> &'static str {
        match self {
            TransferMode::Auto => "auto",
            TransferMode::Presign => "presign",
            TransferMode::ThroughLakeFs => "lakefs",
        }
    }
}

impl fmt::Display for TransferMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TransferMode {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TransferMode::Auto),
            "presign" => Ok(TransferMode::Presign),
            "lakefs" => Ok(TransferMode::ThroughLakeFs),
            _ => Err(Error::InvalidArgument(format!(
                "transfer mode must be one of {}, got {value:?}",
                TransferMode::NAMES.join(", ")
            ))),
        }
    }
}

/// What the server's blockstore offers, as `GET /config` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StorageCapabilities {
    #[serde(default)]
    pub blockstore_type: String,
    #[serde(default)]
    pub pre_sign_support: bool,
    #[serde(default)]
    pub pre_sign_multipart_upload: bool,
}

/// The data path one transfer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataPath {
    pub presign: bool,
    /// Large uploads as presigned multipart uploads (only when `presign`).
    pub presign_multipart: bool,
}

impl DataPath {
    pub const THROUGH_LAKEFS: DataPath = DataPath {
        presign: false,
        presign_multipart: false,
    };
}

#[derive(Deserialize)]
struct ServerConfig {
    #[serde(default)]
    storage_config: Option<StorageCapabilities>,
    #[serde(default)]
    storage_config_list: Vec<StorageCapabilities>,
}

/// Resolve the client's [`TransferMode`] into a [`DataPath`], asking the server (once per
/// client) only when the mode depends on it.
pub fn data_path(client: &LakeFsClient, cancel: &CancelToken) -> Result<DataPath> {
    let mode = client.transfer_mode();
    if mode == TransferMode::ThroughLakeFs {
        return Ok(DataPath::THROUGH_LAKEFS);
    }
    let capabilities = storage_capabilities(client, cancel)?;
    choose(mode, &capabilities)
}

fn choose(mode: TransferMode, capabilities: &StorageCapabilities) -> Result<DataPath> {
    if !capabilities.pre_sign_support {
        if mode == TransferMode::Presign {
            return Err(Error::InvalidArgument(format!(
                "transfer mode presign: this lakeFS's blockstore ({}) offers no presigned URLs; \
                 use transfer mode auto or lakefs",
                if capabilities.blockstore_type.is_empty() {
                    "unknown"
                } else {
                    &capabilities.blockstore_type
                }
            )));
        }
        return Ok(DataPath::THROUGH_LAKEFS);
    }
    Ok(DataPath {
        presign: true,
        presign_multipart: capabilities.pre_sign_multipart_upload,
    })
}

/// The server's storage capabilities (`GET /config`), fetched once per client.
pub fn storage_capabilities(
    client: &LakeFsClient,
    cancel: &CancelToken,
) -> Result<StorageCapabilities> {
    if let Some(known) = client.cached_capabilities().get() {
        return Ok(known.clone());
    }
    let url = client.url(&["config"], &[]);
    let config: ServerConfig = with_retries(
        client.retry_policy(),
        cancel,
        "read config",
        &|| client.api_base().to_owned(),
        || Ok(lakefs_json(client.get(&url).call(), "config")?),
    )?;
    // One blockstore per server here; with several, presign only if every one offers it.
    let capabilities = match config.storage_config {
        Some(single) => single,
        None if !config.storage_config_list.is_empty() => StorageCapabilities {
            blockstore_type: config.storage_config_list[0].blockstore_type.clone(),
            pre_sign_support: config
                .storage_config_list
                .iter()
                .all(|c| c.pre_sign_support),
            pre_sign_multipart_upload: config
                .storage_config_list
                .iter()
                .all(|c| c.pre_sign_multipart_upload),
        },
        None => StorageCapabilities::default(),
    };
    Ok(client
        .cached_capabilities()
        .get_or_init(|| capabilities)
        .clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(presign: bool, multipart: bool) -> StorageCapabilities {
        StorageCapabilities {
            blockstore_type: if presign { "s3" } else { "local" }.into(),
            pre_sign_support: presign,
            pre_sign_multipart_upload: multipart,
        }
    }

    #[test]
    fn modes_parse_and_name_themselves() {
        for name in TransferMode::NAMES {
            assert_eq!(name.parse::<TransferMode>().unwrap().name(), name);
        }
        assert_eq!(
            " Presign ".parse::<TransferMode>().unwrap(),
            TransferMode::Presign
        );
        let err = "direct".parse::<TransferMode>().unwrap_err().to_string();
        assert!(
            err.contains("auto, presign, lakefs") && err.contains("direct"),
            "{err}"
        );
    }

    #[test]
    fn auto_presigns_only_where_the_blockstore_offers_it() {
        assert_eq!(
            choose(TransferMode::Auto, &caps(false, false)).unwrap(),
            DataPath::THROUGH_LAKEFS
        );
        let s3 = choose(TransferMode::Auto, &caps(true, true)).unwrap();
        assert!(s3.presign && s3.presign_multipart);
        let no_mpu = choose(TransferMode::Presign, &caps(true, false)).unwrap();
        assert!(no_mpu.presign && !no_mpu.presign_multipart);
    }

    #[test]
    fn forcing_presign_on_a_blockstore_without_it_names_the_blockstore() {
        let err = choose(TransferMode::Presign, &caps(false, false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("(local) offers no presigned URLs"), "{err}");
    }

    #[test]
    fn server_config_shapes_are_read() {
        let single: ServerConfig = serde_json::from_str(
            r#"{"storage_config":{"blockstore_type":"s3","pre_sign_support":true,
                "pre_sign_multipart_upload":true,"import_support":true}}"#,
        )
        .unwrap();
        assert_eq!(single.storage_config, Some(caps(true, true)));
        let list: ServerConfig = serde_json::from_str(
            r#"{"storage_config_list":[{"blockstore_type":"local","pre_sign_support":false}]}"#,
        )
        .unwrap();
        assert_eq!(list.storage_config_list, vec![caps(false, false)]);
    }
}
