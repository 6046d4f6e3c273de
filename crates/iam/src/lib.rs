//! Identities for function instances, and IAM on every call they make into Sylph.
//!
//! As on Lambda, each instance gets its own temporary credentials ([`Registry::issue`]); the
//! AWS SDKs inside it sign with them unchanged. The [`Authorizer`] checks the SigV4 signature
//! of each call ([`sigv4`]), finds whose credentials they are, works out which actions on which
//! resources the call is ([`actions`]) and evaluates the function's role ([`policy`]).
//!
//! This crate knows nothing of HTTP servers or processes: the gateway hands it the parts of a
//! request, and maps its errors to each protocol's answer.

pub mod actions;
pub mod policy;
pub mod sigv4;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use sylph_model::{Function, Role, LOCAL_ACCOUNT_ID};

pub use policy::Decision;
pub use sigv4::SignedRequest;

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature has expired")]
    Expired,
}

/// Why a call was refused before any policy was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A call from inside an instance carried no signature.
    #[error("Request is missing Authentication Token")]
    MissingToken,
    /// Credentials Sylph never issued, or that belong to another instance.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("{0}")]
    Signature(#[from] SignatureError),
}

/// A call the role does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub action: String,
    pub resource: String,
    /// AWS's message: who, what, on what, and why.
    pub message: String,
}

/// The function an instance's credentials belong to.
#[derive(Debug)]
pub struct Principal {
    pub function: String,
    pub role: Option<Arc<Role>>,
    secret: String,
    session_token: String,
}

impl Principal {
    /// The assumed-role ARN AWS names in its messages.
    pub fn arn(&self) -> String {
        let role = self.role.as_ref().map_or("lambda-role", |r| r.name.as_str());
        format!("arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/{role}/{}", self.function)
    }
}

/// Credentials issued to one instance; they stop working when this is dropped.
pub struct Issued {
    pub access_key_id: Arc<str>,
    pub secret_access_key: String,
    pub session_token: String,
    registry: Weak<Registry>,
}

impl Drop for Issued {
    fn drop(&mut self) {
        if let Some(r) = self.registry.upgrade() {
            r.by_key
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&*self.access_key_id);
        }
    }
}

/// Every live instance's credentials.
#[derive(Default)]
pub struct Registry {
    by_key: Mutex<HashMap<Arc<str>, Arc<Principal>>>,
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// New credentials for an instance of `function` (random; shaped like STS's).
    pub fn issue(self: &Arc<Self>, function: &Function) -> Issued {
        let access_key_id: Arc<str> =
            Arc::from(format!("ASIA{}", random_chars(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")));
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let secret_access_key = random_chars(40, SECRET);
        let session_token = random_chars(96, SECRET);
        let principal = Arc::new(Principal {
            function: function.name.clone(),
            role: function.role.clone(),
            secret: secret_access_key.clone(),
            session_token: session_token.clone(),
        });
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(access_key_id.clone(), principal);
        Issued {
            access_key_id,
            secret_access_key,
            session_token,
            registry: Arc::downgrade(self),
        }
    }

    pub fn lookup(&self, access_key_id: &str) -> Option<Arc<Principal>> {
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key_id)
            .cloned()
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// The public port: the developer's own tools, or anyone who can reach it.
    Public,
    /// An instance's own endpoint inside its network namespace; the access key it was issued.
    Instance(&'a str),
}

/// A request as the authorizer sees it.
pub struct CallParts<'a> {
    pub signed: SignedRequest<'a>,
    pub authorization: Option<&'a str>,
    pub security_token: Option<&'a str>,
}

/// Authenticates calls into Sylph and checks them against the caller's role.
pub struct Authorizer {
    registry: Arc<Registry>,
    /// Refuse calls from functions whose service grants nothing (`--strict-iam`).
    strict: bool,
    /// (function, action) pairs already warned about, so each warning is printed once.
    warned: Mutex<HashSet<(String, String)>>,
}

impl Authorizer {
    pub fn new(registry: Arc<Registry>, strict: bool) -> Authorizer {
        Authorizer {
            registry,
            strict,
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// Who is calling: `Some(principal)` for an instance, `None` for an unauthenticated local
    /// client on the public port (the developer's own tools, which `sylph dev` serves freely).
    pub fn authenticate(&self, caller: Caller<'_>, call: &CallParts<'_>) -> Result<Option<Arc<Principal>>, AuthError> {
        let Some(header) = call.authorization else {
            return match caller {
                Caller::Public => Ok(None),
                Caller::Instance(_) => Err(AuthError::MissingToken),
            };
        };
        let auth = sigv4::parse_authorization(header)?;
        let Some(principal) = self.registry.lookup(auth.access_key_id) else {
            return match caller {
                // Any other key on the public port is the developer's own (local use).
                Caller::Public => Ok(None),
                Caller::Instance(_) => Err(AuthError::UnrecognizedClient),
            };
        };
        if let Caller::Instance(own) = caller {
            if own != auth.access_key_id {
                // Another instance's credentials, leaked or guessed: not this caller's.
                return Err(AuthError::UnrecognizedClient);
            }
        }
        if call.security_token != Some(principal.session_token.as_str()) {
            return Err(AuthError::UnrecognizedClient);
        }
        sigv4::verify(&call.signed, &auth, &principal.secret)?;
        Ok(Some(principal))
    }

    /// Whether `principal` may perform every (action, resource) of a call.
    pub fn authorize(&self, principal: &Principal, needs: &[(String, String)]) -> Result<(), Denied> {
        for (action, resource) in needs {
            let Some(role) = &principal.role else {
                if self.strict {
                    return Err(self.denied(principal, action, resource, "no identity-based policy allows it (the service declares no IAM statements, and --strict-iam is on)"));
                }
                self.warn_once(principal, action, || {
                    format!(
                        "{} called {action} on {resource}, which its service grants in no IAM statement; AWS would refuse it. Add to provider.iam.role.statements:\n  - Effect: Allow\n    Action: {action}\n    Resource: {resource}",
                        principal.function
                    )
                });
                continue;
            };
            match policy::evaluate(role, action, resource) {
                Decision::Allowed => {}
                Decision::ExplicitDeny(origin) => {
                    tracing::warn!(function = %principal.function, "denied {action} on {resource}: explicitly denied by {origin}");
                    return Err(self.denied(
                        principal,
                        action,
                        resource,
                        "of an explicit deny in an identity-based policy",
                    ));
                }
                Decision::ImplicitDeny => {
                    tracing::warn!(
                        function = %principal.function,
                        "denied {action} on {resource}: no statement of role {} allows it; add an Allow statement for this action and resource",
                        role.name
                    );
                    return Err(self.denied(
                        principal,
                        action,
                        resource,
                        &format!("no identity-based policy allows the {action} action"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn denied(&self, principal: &Principal, action: &str, resource: &str, why: &str) -> Denied {
        Denied {
            action: action.to_owned(),
            resource: resource.to_owned(),
            message: format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because {why}",
                principal.arn()
            ),
        }
    }

    fn warn_once(&self, principal: &Principal, action: &str, message: impl FnOnce() -> String) {
        let key = (principal.function.clone(), action.to_owned());
        if self.warned.lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
            tracing::warn!("{}", message());
        }
    }
}

use sylph_telemetry::random_chars;
