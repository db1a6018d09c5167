//! The preset catalogue: vendor profiles as data beside the component (since contract
//! 0.4.0), built in from the project's `presets/*.json` and extended with local files, one
//! format for both.
//!
//! A preset document is JSON:
//!
//! ```json
//! {"id": "acme", "display-name": "Acme", "domains": ["acme.com"],
//!  "notes": "…", "sources": ["https://developer.acme.com/oauth"],
//!  "profile": {"id": "acme", "token-url": "https://auth.acme.com/token", …}}
//! ```
//!
//! The host reads the document's own members; the component's `providers.parse-profile`
//! checks the profile. A file holds one document or an array of them; a directory's
//! `*.json` files are read in name order. A local preset with a built-in one's id replaces it
//! (with a warning); two local presets with one id are refused.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::bindings::types::ConfigurationError;
use crate::runtime::{CallError, Session};
use crate::types::{self, ProviderProfile};

mod built_in {
    include!(concat!(env!("OUT_DIR"), "/presets.rs"));
}

/// The environment variable naming local preset files or directories (separated like
/// `PATH`), read when no `--presets` flag is given.
pub const PRESETS_ENV: &str = "CONNECTOR_PRESETS";

/// Where a preset comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Shipped with this build (`presets/*.json`).
    BuiltIn,
    /// Loaded from this file.
    Local(PathBuf),
}

/// One preset: what a user should know about the vendor, and its profile (as JSON, parsed by
/// the component when a connection uses it).
#[derive(Clone, Debug)]
pub struct Preset {
    /// The name to ask for, for example `github`.
    pub id: String,
    /// The vendor's name.
    pub display_name: String,
    /// The vendor's registrable domains: every endpoint's host is one of them or below one
    /// (hosts that are wholly a placeholder aside).
    pub domains: Vec<String>,
    /// Behaviour worth knowing, and what could not be verified.
    pub notes: String,
    /// The documentation the facts were checked against.
    pub sources: Vec<String>,
    /// The profile's URL placeholders, which every connection fills.
    pub variables: Vec<String>,
    /// Where it comes from.
    pub origin: Origin,
    /// The profile document, pretty-printed.
    profile: String,
}

impl Preset {
    /// The profile, parsed and checked by the component (placeholders unresolved).
    pub fn profile(&self, session: &mut Session) -> Result<ProviderProfile, CallError> {
        session.parse_profile(&self.profile)
    }

    /// The preset as a document in the format local presets are read in.
    pub fn document(&self) -> Result<serde_json::Value, serde_json::Error> {
        let profile: serde_json::Value = serde_json::from_str(&self.profile)?;
        Ok(serde_json::json!({
            "id": self.id,
            "display-name": self.display_name,
            "domains": self.domains,
            "notes": self.notes,
            "sources": self.sources,
            "profile": profile,
        }))
    }
}

/// A preset as `connector-host providers --json` lists it (stable field names).
#[derive(Debug, Serialize)]
pub struct PresetView<'a> {
    /// The id.
    pub id: &'a str,
    /// The vendor's name.
    pub display_name: &'a str,
    /// `built-in` or `local`.
    pub origin: &'static str,
    /// The file a local preset was read from; `null` for a built-in one.
    pub path: Option<String>,
    /// The placeholders a connection fills.
    pub variables: &'a [String],
    /// The vendor's domains.
    pub domains: &'a [String],
    /// What a user should know.
    pub notes: &'a str,
    /// The documentation the facts were checked against.
    pub sources: &'a [String],
}

impl<'a> From<&'a Preset> for PresetView<'a> {
    fn from(preset: &'a Preset) -> Self {
        let (origin, path) = match &preset.origin {
            Origin::BuiltIn => ("built-in", None),
            Origin::Local(path) => ("local", Some(path.display().to_string())),
        };
        Self {
            id: &preset.id,
            display_name: &preset.display_name,
            origin,
            path,
            variables: &preset.variables,
            domains: &preset.domains,
            notes: &preset.notes,
            sources: &preset.sources,
        }
    }
}

/// Why a preset file was refused. Names the file and, when one is to blame, the field.
#[derive(Debug)]
pub enum PresetError {
    /// The file or directory could not be read.
    Read {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A document is not a valid preset.
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field to blame, as a path (`profile.token-url`, `sources[0]`), when known.
        field: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// Two local files define one id.
    Duplicate {
        /// The id.
        id: String,
        /// The file read first.
        first: PathBuf,
        /// The file read second.
        second: PathBuf,
    },
    /// The component could not be run to check a profile.
    Call(CallError),
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::Invalid {
                path,
                field: Some(field),
                reason,
            } => write!(f, "{}: `{field}`: {reason}", path.display()),
            Self::Invalid {
                path,
                field: None,
                reason,
            } => write!(f, "{}: {reason}", path.display()),
            Self::Duplicate { id, first, second } => write!(
                f,
                "preset `{id}` is defined twice: in {} and in {}",
                first.display(),
                second.display()
            ),
            Self::Call(error) => write!(f, "could not check a preset's profile: {error}"),
        }
    }
}

impl std::error::Error for PresetError {}

/// The presets a host offers: the built-in ones, then local ones over them.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    presets: Vec<Preset>,
    warnings: Vec<String>,
}

/// A preset document's members, read by the host (the profile is the component's).
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Document {
    id: String,
    display_name: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    sources: Vec<String>,
    profile: serde_json::Map<String, serde_json::Value>,
}

impl Catalogue {
    /// The presets built into this binary. Their documents are checked by the test suite;
    /// one that could not be read would be left out rather than stop the host.
    pub fn built_in() -> &'static Catalogue {
        static BUILT_IN: OnceLock<Catalogue> = OnceLock::new();
        BUILT_IN.get_or_init(|| {
            let mut presets: Vec<Preset> = built_in::PRESETS
                .iter()
                .filter_map(|(file, text)| {
                    read_documents(Path::new(file), text, &Origin::BuiltIn)
                        .ok()
                        .and_then(|mut documents| documents.pop())
                })
                .collect();
            presets.sort_by(|a, b| a.id.cmp(&b.id));
            Catalogue {
                presets,
                warnings: vec![],
            }
        })
    }

    /// The built-in presets with the local files or directories in `paths` over them, every
    /// local profile checked by the component (through `session`) before it is accepted.
    pub fn with_local(paths: &[PathBuf], session: &mut Session) -> Result<Self, PresetError> {
        let mut catalogue = Self::built_in().clone();
        // Each local preset with the file it came from.
        let mut local: Vec<(Preset, PathBuf)> = vec![];
        for path in paths {
            for file in preset_files(path)? {
                let text = read_file(&file)?;
                for preset in read_documents(&file, &text, &Origin::Local(file.clone()))? {
                    check_profile(&file, &preset, session)?;
                    if let Some((_, first)) = local.iter().find(|(other, _)| other.id == preset.id)
                    {
                        return Err(PresetError::Duplicate {
                            id: preset.id,
                            first: first.clone(),
                            second: file,
                        });
                    }
                    local.push((preset, file.clone()));
                }
            }
        }
        for (preset, file) in local {
            match catalogue.presets.iter_mut().find(|p| p.id == preset.id) {
                Some(built_in) => {
                    catalogue.warnings.push(format!(
                        "the preset `{}` in {} replaces the built-in one",
                        preset.id,
                        file.display()
                    ));
                    *built_in = preset;
                }
                None => catalogue.presets.push(preset),
            }
        }
        catalogue.presets.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(catalogue)
    }

    /// Every preset, by id.
    pub fn presets(&self) -> &[Preset] {
        &self.presets
    }

    /// What the user should hear about the local presets (a built-in one replaced).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// One preset by id.
    pub fn get(&self, id: &str) -> Option<&Preset> {
        self.presets.iter().find(|preset| preset.id == id)
    }

    /// One preset's profile, parsed and checked by the component.
    ///
    /// Errors: the component's `configuration(unknown-preset(id))` for an id the catalogue
    /// lacks.
    pub fn profile(&self, id: &str, session: &mut Session) -> Result<ProviderProfile, CallError> {
        match self.get(id) {
            Some(preset) => preset.profile(session),
            None => Err(CallError::Connector(types::Error::Configuration(
                ConfigurationError::UnknownPreset(id.to_owned()),
            ))),
        }
    }

    /// The presets whose id, name or a domain contains every word of `text` (ignoring case).
    pub fn search<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a Preset> + 'a {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        self.presets.iter().filter(move |preset| {
            let haystack = format!(
                "{} {} {}",
                preset.id,
                preset.display_name,
                preset.domains.join(" ")
            )
            .to_lowercase();
            words.iter().all(|word| haystack.contains(word.as_str()))
        })
    }
}

/// The most a local preset file may hold: the whole built-in catalogue is under 200 KiB.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A local preset file's text, refused when larger than [`MAX_FILE_BYTES`].
fn read_file(file: &Path) -> Result<String, PresetError> {
    use std::io::Read as _;
    let read_error = |error| PresetError::Read {
        path: file.to_owned(),
        error,
    };
    let mut text = String::new();
    std::fs::File::open(file)
        .map_err(read_error)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(PresetError::Invalid {
            path: file.to_owned(),
            field: None,
            reason: format!("larger than {} MiB", MAX_FILE_BYTES / 1024 / 1024),
        });
    }
    Ok(text)
}

/// The `*.json` files a path names: itself, or a directory's, in name order.
fn preset_files(path: &Path) -> Result<Vec<PathBuf>, PresetError> {
    let read_error = |error| PresetError::Read {
        path: path.to_owned(),
        error,
    };
    if !path.is_dir() {
        // A missing file is reported by the read that follows.
        return Ok(vec![path.to_owned()]);
    }
    let mut files = vec![];
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let file = entry.map_err(read_error)?.path();
        if file.extension().is_some_and(|ext| ext == "json") && !file.is_dir() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// The preset documents of one file (an object, or an array of them), with their own
/// members checked; the profiles are checked by the component afterwards.
fn read_documents(path: &Path, text: &str, origin: &Origin) -> Result<Vec<Preset>, PresetError> {
    let invalid = |field: Option<String>, reason: String| PresetError::Invalid {
        path: path.to_owned(),
        field,
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|error| invalid(None, format!("not JSON: {error}")))?;
    let (documents, indexed) = match value {
        serde_json::Value::Array(items) => (items, true),
        other => (vec![other], false),
    };
    documents
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let at = |field: &str| {
                let field = field.trim_start_matches('.');
                if indexed {
                    format!("[{index}].{field}")
                        .trim_end_matches('.')
                        .to_owned()
                } else {
                    field.to_owned()
                }
            };
            let document: Document = serde_path_to_error::deserialize(value).map_err(|error| {
                let field = error.path().to_string();
                let field = (field != ".").then(|| at(&field));
                invalid(field, error.into_inner().to_string())
            })?;
            check_document(&document)
                .map_err(|(field, reason)| invalid(Some(at(&field)), reason))?;
            let variables = match document.profile.get("variables") {
                Some(serde_json::Value::Array(names)) => names
                    .iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect(),
                _ => vec![],
            };
            Ok(Preset {
                id: document.id,
                display_name: document.display_name,
                domains: document.domains,
                notes: document.notes,
                sources: document.sources,
                variables,
                origin: origin.clone(),
                // Pretty, so that a parse error's line names the member (`field_at_line`).
                profile: serde_json::to_string_pretty(&document.profile)
                    .map_err(|error| invalid(Some(at("profile")), error.to_string()))?,
            })
        })
        .collect()
}

/// The document's own rules: a usable id, the profile's id the same, a name, https sources,
/// domain names.
fn check_document(document: &Document) -> Result<(), (String, String)> {
    let id_ok = !document.id.is_empty()
        && document.id.len() <= 64
        && document
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !document.id.starts_with('-');
    if !id_ok {
        return Err((
            "id".into(),
            "must be 1 to 64 lower-case letters, digits and `-`, not starting with `-`".into(),
        ));
    }
    match document.profile.get("id") {
        Some(serde_json::Value::String(id)) if *id == document.id => {}
        _ => {
            return Err((
                "profile.id".into(),
                format!("must be `{}`, the preset's id", document.id),
            ));
        }
    }
    if document.display_name.trim().is_empty() {
        return Err(("display-name".into(), "must not be empty".into()));
    }
    for (index, source) in document.sources.iter().enumerate() {
        let https = url::Url::parse(source).is_ok_and(|url| url.scheme() == "https");
        if !https {
            return Err((format!("sources[{index}]"), "must be an https URL".into()));
        }
    }
    for (index, domain) in document.domains.iter().enumerate() {
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !labels_ok {
            return Err((
                format!("domains[{index}]"),
                "must be a lower-case domain name such as `example.com`".into(),
            ));
        }
    }
    Ok(())
}

/// Checks a local preset's profile with the component, and that its endpoints sit on the
/// preset's domains when it names any.
fn check_profile(path: &Path, preset: &Preset, session: &mut Session) -> Result<(), PresetError> {
    let invalid = |field: Option<String>, reason: String| PresetError::Invalid {
        path: path.to_owned(),
        field,
        reason,
    };
    let profile = match preset.profile(session) {
        Ok(profile) => profile,
        Err(CallError::Connector(types::Error::Configuration(error))) => {
            let (field, reason) = profile_error(&preset.profile, &error);
            return Err(invalid(
                Some(field.map_or_else(|| "profile".to_owned(), |f| format!("profile.{f}"))),
                reason,
            ));
        }
        Err(error) => return Err(PresetError::Call(error)),
    };
    if let Some((field, host)) = off_domain_endpoint(&profile, &preset.domains) {
        return Err(invalid(
            Some(format!("profile.{field}")),
            format!(
                "host `{host}` is not one of the preset's domains ({}) nor below one",
                preset.domains.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The field a configuration error from `parse-profile` blames, and the reason without it.
///
/// A profile that is JSON but not a profile names its member first (``"`token-url`: invalid
/// type: ..."``); a syntax error ends with the parser's position,
/// which points into the profile as the host passed it, not the file, so the member on that
/// line stands for it.
fn profile_error(profile: &str, error: &ConfigurationError) -> (Option<String>, String) {
    match error {
        ConfigurationError::InvalidProfile(reason) => {
            if let Some((field, rest)) = reason
                .strip_prefix('`')
                .and_then(|rest| rest.split_once("`: "))
            {
                return (Some(field.to_owned()), rest.to_owned());
            }
            let (reason, line) = match reason.rsplit_once(" at line ") {
                Some((reason, position)) => (
                    reason.to_owned(),
                    position
                        .split_whitespace()
                        .next()
                        .and_then(|line| line.parse::<usize>().ok()),
                ),
                None => (reason.clone(), None),
            };
            let field = line.and_then(|line| field_at_line(profile, line));
            (field, reason)
        }
        ConfigurationError::InvalidUrl(field)
        | ConfigurationError::InsecureUrl(field)
        | ConfigurationError::MissingEndpoint(field)
        | ConfigurationError::InvalidValue(field) => (
            Some(field.clone()),
            crate::describe::configuration_error(error),
        ),
        other => (None, crate::describe::configuration_error(other)),
    }
}

/// The dotted path of the member on `line` (1-based) of `profile`, pretty-printed JSON as
/// [`Preset::profile`] keeps it: the key on that line, then the keys of the containers
/// around it (array positions are not named).
fn field_at_line(profile: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = profile.lines().collect();
    let key_of = |text: &str| {
        let rest = text.trim_start().strip_prefix('"')?;
        let (key, after) = rest.split_once('"')?;
        after.trim_start().starts_with(':').then(|| key.to_owned())
    };
    let indent = |text: &str| text.len() - text.trim_start().len();
    let start = line.checked_sub(1)?.min(lines.len().checked_sub(1)?);
    let mut path = vec![];
    let mut depth = usize::MAX;
    for text in lines[..=start].iter().rev() {
        // Above the line itself, only a line indented less than the last one taken opens a
        // container around it (a sibling's closing line is indented as much as its opening).
        if indent(text) < depth {
            path.extend(key_of(text));
            depth = indent(text);
        }
    }
    path.reverse();
    (!path.is_empty()).then(|| path.join("."))
}

/// The first endpoint whose host is not on `domains` (hosts that are wholly a placeholder,
/// and profiles of presets that name no domains, are not checked).
fn off_domain_endpoint(
    profile: &ProviderProfile,
    domains: &[String],
) -> Option<(&'static str, String)> {
    if domains.is_empty() {
        return None;
    }
    crate::profile_endpoints(profile)
        .into_iter()
        .find_map(|(field, url)| {
            let host = template_host(url)?;
            let on_domain = domains
                .iter()
                .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")));
            (!on_domain).then_some((field, host))
        })
}

/// The lower-case host of a URL template, its placeholders filled with a label; `None` when
/// the host is wholly a placeholder (`https://{domain}/…`, `{base-url}/…`) or unparsable.
pub fn template_host(template: &str) -> Option<String> {
    let (_, rest) = template.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host.split(':').next()?;
    let wholly_placeholder = host.starts_with('{')
        && host.ends_with('}')
        && host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if wholly_placeholder {
        return None;
    }
    let mut filled = String::new();
    let mut rest = host;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}')? + start;
        filled.push_str(&rest[..start]);
        filled.push_str("placeholder");
        rest = &rest[end + 1..];
    }
    filled.push_str(rest);
    Some(filled.to_ascii_lowercase())
}
