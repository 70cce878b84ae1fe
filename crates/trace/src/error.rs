//! Why an import failed.

/// An input that could not be imported: the file, where in it, and what
/// was expected.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not well-formed (YAML, JSON or CSV).
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message (with line and column when it has them).
        message: String,
    },
    /// Well-formed, but not what meshsim can import.
    #[error("{file}: {at}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Where: a key path, a span id or a line.
        at: String,
        /// What is wrong and what was expected.
        message: String,
    },
}
