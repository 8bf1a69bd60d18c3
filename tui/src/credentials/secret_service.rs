//! The freedesktop Secret Service (GNOME Keyring, KWallet) on the session
//! bus. Items carry the attributes `service=micro` and `account=<profile>@<gateway>`.

use std::collections::HashMap;

use secret_service::{Collection, EncryptionType, SecretService};

use super::{Backend, SERVICE, StoreError};

fn failed(e: secret_service::Error) -> StoreError {
    StoreError::failed(Backend::SecretService, e)
}

fn attributes(account: &str) -> HashMap<&str, &str> {
    HashMap::from([("service", SERVICE), ("account", account)])
}

async fn connect() -> Result<SecretService<'static>, StoreError> {
    SecretService::connect(EncryptionType::Dh).await.map_err(failed)
}

/// The default collection, created when a fresh keyring has none.
async fn collection<'a>(service: &'a SecretService<'a>) -> Result<Collection<'a>, StoreError> {
    let collection = match service.get_any_collection().await {
        Ok(collection) => collection,
        Err(_) => service
            .create_collection("Login", "default")
            .await
            .map_err(failed)?,
    };
    collection.ensure_unlocked().await.map_err(failed)?;
    Ok(collection)
}

pub async fn probe() -> Result<(), StoreError> {
    let service = connect().await?;
    collection(&service).await.map(|_| ())
}

pub async fn get(account: String) -> Result<Option<Vec<u8>>, StoreError> {
    let service = connect().await?;
    let found = service.search_items(attributes(&account)).await.map_err(failed)?;
    let Some(item) = found.unlocked.first().or(found.locked.first()) else {
        return Ok(None);
    };
    item.ensure_unlocked().await.map_err(failed)?;
    item.get_secret().await.map(Some).map_err(failed)
}

pub async fn set(account: String, secret: Vec<u8>) -> Result<(), StoreError> {
    let service = connect().await?;
    let collection = collection(&service).await?;
    collection
        .create_item(
            &format!("micro login for {account}"),
            attributes(&account),
            &secret,
            true,
            "application/json",
        )
        .await
        .map(|_| ())
        .map_err(failed)
}

pub async fn delete(account: String) -> Result<(), StoreError> {
    let service = connect().await?;
    let found = service.search_items(attributes(&account)).await.map_err(failed)?;
    for item in found.unlocked.iter().chain(found.locked.iter()) {
        item.delete().await.map_err(failed)?;
    }
    Ok(())
}
