//! The settings tables of `docs/CONFIG.md`, generated from [`Config`]: a row per field, with
//! its environment form, its default (the value a configuration without sources gets) and its
//! doc comment. A unit test keeps the file in step; `SEALPOST_BLESS=1` rewrites it.

use documented::DocumentedFields;
use figment::value::Value;

use super::{Config, ConfigError, env_name};

/// The tables of `docs/CONFIG.md`: the SMTP listener's settings (named `smtp_*` or `smtps_*`)
/// with `smtp`, else the others.
pub fn settings_table(smtp: bool) -> Result<String, ConfigError> {
    let defaults = Config::builder().build()?;
    let defaults = match Value::serialize(&defaults) {
        Ok(Value::Dict(_, dict)) => dict,
        _ => {
            return Err(ConfigError::Invalid {
                setting: "configuration".to_owned(),
                origin: None,
                reason: "the defaults do not serialize to a table".to_owned(),
            });
        }
    };
    let mut table = String::from("| key | environment | default | meaning |\n|---|---|---|---|\n");
    for (key, doc) in Config::FIELD_NAMES.iter().zip(Config::FIELD_DOCS) {
        let is_smtp = key.starts_with("smtp_") || key.starts_with("smtps_");
        if is_smtp != smtp {
            continue;
        }
        let meaning = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        table.push_str(&format!(
            "| `{key}` | `{}` | {} | {} |\n",
            env_name(key),
            cell(&shown(defaults.get(*key))),
            cell(&meaning),
        ));
    }
    Ok(table)
}

/// A default as the table shows it.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Empty(..)) => "(none)".to_owned(),
        Some(Value::Array(_, items)) if items.is_empty() => "(none)".to_owned(),
        Some(Value::Array(_, items)) => items
            .iter()
            .map(|item| shown(Some(item)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(_, text)) => format!("`{text}`"),
        Some(Value::Char(_, c)) => format!("`{c}`"),
        Some(Value::Bool(_, b)) => b.to_string(),
        Some(Value::Num(_, n)) => match (n.to_u128(), n.to_i128()) {
            (Some(u), _) => u.to_string(),
            (None, Some(i)) => i.to_string(),
            (None, None) => n.to_f64().map_or_else(String::new, |f| f.to_string()),
        },
        Some(Value::Dict(..)) => "(table)".to_owned(),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Replace the generated part between `<!-- settings: NAME ... -->` and
    /// `<!-- end of settings: NAME -->` with `table`.
    fn splice(doc: &str, name: &str, table: &str) -> Result<String, String> {
        let begin = format!("<!-- settings: {name} ");
        let end = format!("<!-- end of settings: {name} -->");
        let start = doc
            .find(&begin)
            .and_then(|i| doc[i..].find('\n').map(|nl| i + nl + 1))
            .ok_or_else(|| format!("no {begin}...--> line"))?;
        let stop = doc[start..]
            .find(&end)
            .map(|i| start + i)
            .ok_or_else(|| format!("no {end} line"))?;
        Ok(format!("{}{table}{}", &doc[..start], &doc[stop..]))
    }

    #[test]
    fn config_md_tables_are_generated_from_the_code() -> Result<(), Box<dyn std::error::Error>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md");
        let doc = std::fs::read_to_string(&path)?;
        let mut expected = splice(&doc, "general", &settings_table(false)?)?;
        expected = splice(&expected, "smtp", &settings_table(true)?)?;
        if expected == doc {
            return Ok(());
        }
        if std::env::var_os("SEALPOST_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(&path, expected)?;
            return Ok(());
        }
        let (line, (want, have)) = expected
            .lines()
            .zip(doc.lines())
            .enumerate()
            .find(|(_, (want, have))| want != have)
            .unwrap_or((0, ("(length differs)", "")));
        panic!(
            "docs/CONFIG.md does not match the settings in server/src/config/mod.rs; run \
             `SEALPOST_BLESS=1 cargo test -p sealpost-server --lib config::docs` and commit it.\n\
             first difference, line {}:\n  expected: {want}\n  found:    {have}",
            line + 1
        );
    }
}
