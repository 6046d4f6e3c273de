use std::fmt;
use std::path::PathBuf;

use crate::yaml::Mark;

/// Why a manifest could not be turned into a service.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The file was read but something in it is wrong; the diagnostic says where.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

/// A user-facing error in a manifest: what is wrong, where (file:line:col and the path in the
/// document) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub mark: Mark,
    /// Path in the document, e.g. `functions.create.events[0].http.path`; empty for the root.
    pub path: String,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.mark.line, self.mark.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Errors raised while walking the tree, before the file name is attached.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub mark: Mark,
    pub path: String,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(mark: Mark, path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            mark,
            path: path.into(),
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    pub fn into_error(self, file: PathBuf) -> ManifestError {
        ManifestError::Invalid(Box::new(Diagnostic {
            file,
            mark: self.mark,
            path: self.path,
            message: self.message,
            help: self.help,
        }))
    }
}
