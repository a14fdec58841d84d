//! The two sources over the defaults, as figment providers: the TOML file and the `SEALPOST_*`
//! environment. Each keeps only the keys [`Config`] has and reports the others as warnings.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider, Source};

use super::{CONFIG_ENV, Config, ConfigError, ENV_PREFIX, env_name};

/// The parsed configuration file.
pub(super) struct TomlFile {
    path: PathBuf,
    settings: Dict,
    unknown: Vec<String>,
}

impl TomlFile {
    /// Parse `text`, read from `path`. A syntax error gives its line and column but not the
    /// line itself, which may hold a secret.
    pub(super) fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Toml {
            path: path.to_owned(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_owned();
            match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or_default();
                    let line = before.matches('\n').count() + 1;
                    let column = before
                        .rsplit('\n')
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .count()
                        + 1;
                    invalid(format!("line {line}, column {column}: {message}"))
                }
                None => invalid(message),
            }
        })?;
        let Ok(Value::Dict(_, mut settings)) = Value::serialize(&table) else {
            return Err(invalid("not a table of settings".to_owned()));
        };
        let unknown: Vec<String> = settings
            .keys()
            .filter(|k| !Config::keys().contains(&k.as_str()))
            .cloned()
            .collect();
        settings.retain(|k, _| Config::keys().contains(&k.as_str()));
        Ok(Self {
            path: path.to_owned(),
            settings,
            unknown,
        })
    }

    pub(super) fn warnings(&self) -> Vec<String> {
        self.unknown
            .iter()
            .map(|key| {
                format!(
                    "unknown key {key:?} in config file {} ignored",
                    self.path.display()
                )
            })
            .collect()
    }
}

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("config file", Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.settings.clone()))
    }
}

/// The `SEALPOST_*` variables. Values are trimmed and kept as text: numbers and switches are
/// read from text at extraction (`Figment::extract_lossy`), lists are split at commas by their
/// settings' deserializers. An empty value is no value.
pub(super) struct Environment {
    settings: Dict,
    unknown: Vec<String>,
}

impl Environment {
    /// The process environment, as [`Environment::from_vars`] takes it. A value that is not
    /// UTF-8 counts as empty.
    pub(super) fn process_vars() -> impl Iterator<Item = (String, String)> {
        std::env::vars_os().filter_map(|(name, value)| {
            Some((
                name.into_string().ok()?,
                value.into_string().unwrap_or_default(),
            ))
        })
    }

    pub(super) fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut settings = Dict::new();
        let mut unknown = Vec::new();
        for (name, value) in vars {
            let Some(suffix) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_ENV {
                continue;
            }
            let key = suffix.to_ascii_lowercase();
            if !Config::keys().contains(&key.as_str()) || env_name(&key) != name {
                unknown.push(name);
                continue;
            }
            let value = value.trim();
            if !value.is_empty() {
                settings.insert(key, Value::from(value.to_owned()));
            }
        }
        unknown.sort();
        Self { settings, unknown }
    }

    pub(super) fn warnings(&self) -> Vec<String> {
        self.unknown
            .iter()
            .map(|name| format!("unknown environment variable {name} ignored"))
            .collect()
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            "environment variable",
            Source::Custom("environment".to_owned()),
        )
        .interpolater(|_: &Profile, keys: &[&str]| env_name(keys.first().copied().unwrap_or("")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.settings.clone()))
    }
}
