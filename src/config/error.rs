//! Configuration errors: each names the file, the line and column, the key and what was
//! expected, so the owner can fix the file without guessing.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, when the problem belongs to one (`workload.resource_limits.memory_mb`).
    pub key: Option<String>,
    /// 1-based line and column in the file, when the problem has a place there.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a configuration could not be loaded, checked or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has a value of the wrong type, or a value out of range.
    #[error("{}", render(.path, .problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Everything found wrong, in file order.
        problems: Vec<Problem>,
    },
    /// An `ISLAND_*` environment override holds a bad value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write the configuration file {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `config init` found a file already there and left it alone.
    #[error("{} already exists; it was left as it is", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// An edit asked for from a UI is not valid (it names the field and the value).
    #[error("cannot change {key}: {message}")]
    BadEdit {
        /// The key the edit would change.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn render(path: &std::path::Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&path.display().to_string());
        if let Some((line, col)) = p.position {
            out.push_str(&format!(":{line}:{col}"));
        }
        out.push_str(": ");
        if let Some(key) = &p.key {
            out.push_str(&format!("`{key}`: "));
        }
        out.push_str(&p.message);
    }
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}
