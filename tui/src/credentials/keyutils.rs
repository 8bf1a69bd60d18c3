//! The kernel keyring: the user keyring, which every process of the user
//! shares until reboot and which works on a headless server without D-Bus.

use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};

use super::{Backend, SERVICE, StoreError};

fn failed(e: KeyError) -> StoreError {
    StoreError::failed(Backend::Keyutils, format!("{e:?}"))
}

fn ring() -> Result<KeyRing, StoreError> {
    KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(failed)
}

fn description(account: &str) -> String {
    format!("{SERVICE}:{account}")
}

pub fn probe() -> Result<(), StoreError> {
    ring().map(|_| ())
}

pub fn get(account: &str) -> Result<Option<Vec<u8>>, StoreError> {
    match ring()?.search(&description(account)) {
        Ok(key) => key.read_to_vec().map(Some).map_err(failed),
        Err(KeyError::KeyDoesNotExist) => Ok(None),
        Err(e) => Err(failed(e)),
    }
}

pub fn set(account: &str, secret: &[u8]) -> Result<(), StoreError> {
    let key = ring()?.add_key(&description(account), secret).map_err(failed)?;
    // Readable by the user's other processes too, which may not possess the
    // user keyring through their session keyring (e.g. over ssh or in CI).
    let perms = KeyPermissionsBuilder::builder()
        .posessor(Permission::ALL)
        .user(
            Permission::VIEW
                | Permission::READ
                | Permission::WRITE
                | Permission::SEARCH
                | Permission::SETATTR,
        )
        .build();
    key.set_perms(perms).map_err(failed)
}

pub fn delete(account: &str) -> Result<(), StoreError> {
    let ring = ring()?;
    match ring.search(&description(account)) {
        // Unlinked first, so that no later search (a new login under the same
        // name, say) meets the dead key before the kernel collects it.
        Ok(key) => {
            ring.unlink_key(key).map_err(failed)?;
            match key.invalidate() {
                Ok(()) | Err(KeyError::KeyDoesNotExist | KeyError::KeyRevoked) => Ok(()),
                Err(e) => Err(failed(e)),
            }
        }
        Err(KeyError::KeyDoesNotExist) => Ok(()),
        Err(e) => Err(failed(e)),
    }
}
