//! Static files (CSS, the pickup and staff scripts, the icon), compiled into the binary and served under
//! content-hashed names, `/static/<name>-<hash>.<ext>`, so they can be cached for a year and a
//! new release can never be mixed with an old cached file. Nothing is read from disk at run
//! time.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// The source name, e.g. `style.css`.
    name: &'static str,
    /// The URL path, e.g. `/static/style-0123456789.css`.
    url: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const SOURCES: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/style.css"),
    ),
    (
        "pickup.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/pickup.js"),
    ),
    (
        "staff.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/staff.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../../static/icon.svg"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|&(name, content_type, bytes)| {
            let digest = hex::encode(sealpost_crypto::hash::sha256(bytes));
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            // Leaked once per asset at first use: the set is fixed and tiny.
            let url: &'static str =
                Box::leak(format!("/static/{stem}-{}.{ext}", &digest[..12]).into_boxed_str());
            Asset {
                name,
                url,
                content_type,
                bytes,
            }
        })
        .collect()
});

/// The hashed URL of the embedded file `name` (e.g. `"style.css"`). An unknown name (a bug)
/// yields a URL that 404s rather than a panic.
pub fn url(name: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("/static/missing", |a| a.url)
}

/// `GET /static/{file}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS
        .iter()
        .find(|a| a.url.strip_prefix("/static/") == Some(file.as_str()))
    else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_hashed_and_distinct() {
        let css = url("style.css");
        assert!(
            css.starts_with("/static/style-") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static/style-".len() + 12 + ".css".len());
        assert_ne!(url("pickup.js"), css);
        assert_eq!(url("nope.txt"), "/static/missing");
    }
}
