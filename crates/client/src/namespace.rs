//! The containerd namespace and lease, sent with every call.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;

use crate::Error;

/// The metadata key containerd reads the namespace from.
pub const HEADER: &str = "containerd-namespace";

/// The metadata key containerd reads the lease from.
pub const LEASE_HEADER: &str = "containerd-lease";

/// A namespace name, validated as containerd validates it.
#[derive(Debug, Clone)]
pub struct Namespace {
    name: String,
    valid: bool,
}

impl Namespace {
    /// A valid namespace named `name`.
    pub fn new(name: &str) -> Result<Namespace, Error> {
        let valid = !name.is_empty()
            && name.len() <= 76
            && name.split('.').all(|label| {
                label.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if valid {
            Ok(Namespace {
                name: name.to_owned(),
                valid,
            })
        } else {
            Err(Error::InvalidNamespace(name.to_owned()))
        }
    }

    /// A namespace that fails every call, for names rejected where no error can be returned.
    pub(crate) fn invalid(name: &str) -> Namespace {
        Namespace {
            name: name.to_owned(),
            valid: false,
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

/// What every request carries: the namespace and, inside a lease, the lease id.
#[derive(Debug, Clone)]
pub struct CallMetadata {
    pub(crate) namespace: Namespace,
    pub(crate) lease: Option<String>,
}

impl Interceptor for CallMetadata {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if !self.namespace.valid {
            return Err(tonic::Status::invalid_argument(format!(
                "invalid namespace {:?}",
                self.namespace.name
            )));
        }
        let value = MetadataValue::try_from(self.namespace.name.as_str())
            .map_err(|_| tonic::Status::invalid_argument("namespace is not valid metadata"))?;
        request.metadata_mut().insert(HEADER, value);
        if let Some(lease) = &self.lease {
            let value = MetadataValue::try_from(lease.as_str())
                .map_err(|_| tonic::Status::invalid_argument("lease id is not valid metadata"))?;
            request.metadata_mut().insert(LEASE_HEADER, value);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::Namespace;

    #[test]
    fn names_are_checked_like_containerd_does() {
        for ok in ["default", "k8s.io", "a-b_c", "x1"] {
            assert!(Namespace::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a..b", "a/b", "a b", ".a"] {
            assert!(Namespace::new(bad).is_err(), "{bad}");
        }
    }
}
