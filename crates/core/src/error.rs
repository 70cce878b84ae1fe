//! Configuration errors, reported once when an algorithm is built.

/// A configuration value is out of range or inconsistent.
///
/// The message names the field, what it was, and what is expected, so that the
/// scenario loader can attach the file position and show it as is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    /// The offending field, dotted (`least_request.choice_count`).
    pub field: &'static str,
    /// What is wrong and what is expected.
    pub problem: String,
}

impl ConfigError {
    /// A new error for `field`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            field,
            problem: problem.into(),
        }
    }
}

/// Checks `lo <= value <= hi`, with an error naming the field.
pub(crate) fn check_range<T: PartialOrd + core::fmt::Display>(
    field: &'static str,
    value: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    if value >= lo && value <= hi {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("{value} is out of range; expected {lo} to {hi}"),
        ))
    }
}
