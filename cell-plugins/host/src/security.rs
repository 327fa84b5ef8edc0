//! Ownership and permission checks on plugin files and directories.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::error::Refusal;

/// Which owners a plugin file or directory may have. The default allows
/// root (uid 0) and the process's effective user. `[thread-safe]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerPolicy {
    allowed: Vec<u32>,
}

impl Default for OwnerPolicy {
    fn default() -> Self {
        Self::root_and_effective_user()
    }
}

impl OwnerPolicy {
    /// Root and the effective user of this process (the daemon's user).
    pub fn root_and_effective_user() -> Self {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let mut allowed = vec![0];
        if euid != 0 {
            allowed.push(euid);
        }
        OwnerPolicy { allowed }
    }

    /// Exactly these uids (for tests, or a stricter deployment).
    pub fn only(uids: impl IntoIterator<Item = u32>) -> Self {
        OwnerPolicy {
            allowed: uids.into_iter().collect(),
        }
    }

    /// The allowed uids.
    pub fn allowed(&self) -> &[u32] {
        &self.allowed
    }

    /// Check one file or directory's metadata (after following symlinks):
    /// not world-writable, owned by an allowed uid. Returns the reason on
    /// refusal. `[thread-safe]`
    pub fn check(&self, meta: &Metadata) -> Result<(), Refusal> {
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Err(Refusal::WorldWritable {
                mode: mode & 0o7777,
            });
        }
        let uid = meta.uid();
        if !self.allowed.contains(&uid) {
            return Err(Refusal::Owner {
                uid,
                allowed: self.allowed.clone(),
            });
        }
        Ok(())
    }
}
