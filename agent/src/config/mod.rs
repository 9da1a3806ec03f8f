//! keepalived.conf -> typed `Config`, with file:line:col errors and fixes.
//! `load` reads and checks everything and reports every problem found.

pub mod check;
pub mod diag;
mod expand;
mod fixups;
pub mod keywords;
pub mod lexer;
pub mod lvs;
pub mod model;
pub mod proto_config;
pub mod tree;
pub mod typed;
mod validate;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use model::Config;

/// Options that change how a file reads.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// keepalived's config id (`-i`), for `@ID` conditional lines.
    pub config_id: Option<String>,
    /// `xvrrp check --strict`: what keepalived runs with a logged complaint
    /// (unknown keywords, vrrp_strict fix-ups) is an error.
    pub strict: bool,
}

impl LoadOptions {
    /// `-i` when given, else keepalived's default: the host name up to its
    /// first dot, so `@lb1` lines apply on host lb1.
    pub fn effective_config_id(&self) -> Option<String> {
        self.config_id.clone().or_else(|| {
            let host = nix::unistd::gethostname().ok()?;
            let host = host.to_string_lossy();
            host.split('.')
                .next()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
        })
    }
}

/// Reads, parses and checks `path`. The config is returned when there are
/// no errors; the diagnostics always (warnings included).
pub fn load(path: &Path, opts: &LoadOptions) -> (Option<Config>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut tokens = Vec::new();
    let files = {
        let mut reader = lexer::Reader::new(&mut diags, opts.effective_config_id());
        reader.read_file(path, &mut tokens);
        reader.files
    };
    finish(&tokens, files, diags, opts)
}

/// Parses `text` as if read from `path` (no file-permission checks; includes
/// are still read from disk). For tests and tools.
pub fn parse_str(text: &str, path: &Path, opts: &LoadOptions) -> (Option<Config>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut tokens = Vec::new();
    let files = {
        let mut reader = lexer::Reader::new(&mut diags, opts.effective_config_id());
        reader.read_text(path, text, &mut tokens);
        let mut files = vec![path.to_path_buf()];
        files.extend(reader.files);
        files
    };
    finish(&tokens, files, diags, opts)
}

fn finish(
    tokens: &[lexer::Tok],
    files: Vec<std::path::PathBuf>,
    mut diags: Diagnostics,
    opts: &LoadOptions,
) -> (Option<Config>, Diagnostics) {
    let nodes = tree::parse(tokens, &mut diags);
    let mut cfg = typed::Builder::new(&mut diags).config(&nodes, files);
    fixups::apply(&mut cfg, &mut diags);
    validate::validate(&cfg, &mut diags);
    if opts.strict {
        for d in diags.0.iter_mut().filter(|d| d.lenient) {
            d.severity = Severity::Error;
        }
    }
    // Report in reading order: file problems first, then by position.
    diags.0.sort_by(|a, b| {
        let key = |d: &Diagnostic| d.pos.as_ref().map(|p| (p.file.clone(), p.line, p.col));
        key(a).cmp(&key(b))
    });
    if diags.has_errors() {
        (None, diags)
    } else {
        (Some(cfg), diags)
    }
}

#[cfg(test)]
mod tests;
