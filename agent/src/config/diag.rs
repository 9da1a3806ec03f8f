//! Diagnostics with file:line:col, the offending token, and the fix.

use std::{fmt, path::PathBuf, sync::Arc};

/// Where a token came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pos {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// None for problems with a whole file (permissions, not found).
    pub pos: Option<Pos>,
    pub file: Option<PathBuf>,
    /// The token at fault, when there is one.
    pub token: Option<String>,
    pub message: String,
    /// What to do about it.
    pub fix: Option<String>,
    /// Something keepalived runs with (it logs and carries on): a warning,
    /// an error under `xvrrp check --strict`.
    #[serde(skip)]
    pub lenient: bool,
}

impl Diagnostic {
    pub fn error(pos: &Pos, token: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            pos: Some(pos.clone()),
            file: Some((*pos.file).clone()),
            token: Some(token.to_owned()),
            message: message.into(),
            fix: None,
            lenient: false,
        }
    }

    /// Marks a warning as one `--strict` turns into an error.
    pub fn lenient(mut self) -> Diagnostic {
        self.lenient = true;
        self
    }

    pub fn warning(pos: &Pos, token: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(pos, token, message)
        }
    }

    /// A problem with a whole file.
    pub fn file(path: &std::path::Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            pos: None,
            file: Some(path.to_path_buf()),
            token: None,
            message: message.into(),
            fix: None,
            lenient: false,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Diagnostic {
        self.fix = Some(fix.into());
        self
    }

    pub fn as_warning(mut self) -> Diagnostic {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pos, &self.file) {
            (Some(p), _) => write!(f, "{p}: ")?,
            (None, Some(file)) => write!(f, "{}: ", file.display())?,
            (None, None) => {}
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.message)?;
        if let Some(t) = &self.token {
            if !self.message.contains(t.as_str()) {
                write!(f, " (at `{t}`)")?;
            }
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

/// Everything found while loading; errors make the config unusable.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}
