//! [`Lazy`]: an AWS client built on its first use. Building a client runs a good deal of its
//! crate's code (configuration, plugins, the endpoint resolver), and that code stays resident:
//! a `serve` runner whose jobs never read a secret or a stack has no need of the Secrets
//! Manager, SSM or CloudFormation clients, and the idle runner is smaller without them. Clones
//! share the one client. Building does no I/O; nothing to cancel.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// A client of type `C`, made from the shared configuration by `make` the first time it is
/// dereferenced; every clone dereferences to the same client.
pub struct Lazy<C> {
    client: Arc<OnceLock<C>>,
    config: aws_config::SdkConfig,
    make: fn(&aws_config::SdkConfig) -> C,
}

impl<C> Lazy<C> {
    /// A client that `make` will build from `config` when first used.
    pub fn new(config: &aws_config::SdkConfig, make: fn(&aws_config::SdkConfig) -> C) -> Self {
        Lazy {
            client: Arc::new(OnceLock::new()),
            config: config.clone(),
            make,
        }
    }

    /// Whether the client has been built (for tests and the memory figures).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

impl<C: Clone> Lazy<C> {
    /// The client itself, built now if it was not yet: for a part that keeps a client of its
    /// own (clients are handles; a clone shares the connection pool).
    pub fn built(&self) -> C {
        (**self).clone()
    }
}

impl<C> Deref for Lazy<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.client.get_or_init(|| (self.make)(&self.config))
    }
}

impl<C> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Lazy {
            client: self.client.clone(),
            config: self.config.clone(),
            make: self.make,
        }
    }
}

impl<C> fmt::Debug for Lazy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("built", &self.is_built())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }

    #[test]
    fn a_client_is_built_on_first_use_once_for_every_clone() {
        let lazy = Lazy::new(&config(), aws_sdk_sqs::Client::new);
        let clone = lazy.clone();
        assert!(!lazy.is_built() && !clone.is_built());
        let region = clone.config().region().map(|r| r.to_string());
        assert_eq!(region.as_deref(), Some("us-east-1"));
        assert!(lazy.is_built(), "the clone built the shared client");
        assert!(format!("{lazy:?}").contains("built: true"));
    }
}
