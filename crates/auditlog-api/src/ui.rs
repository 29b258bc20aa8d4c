//! The audit page: static files embedded in the binary, served at `/` and `/ui/<version>/`.
//!
//! ```text
//!  GET /                      index.html, its asset paths carrying the version   no-cache
//!  GET /ui/<version>/<file>   one embedded asset                                 immutable
//!  GET /ui/<other>/<file>     the same asset (an old page still loads)           no-cache
//! ```
//!
//! The version is a hash of every asset, so a new binary's page never runs an old script
//! from a cache, and an unchanged one is never fetched twice. Nothing is downloaded at run
//! time and nothing is inline: every response carries a Content-Security-Policy that allows
//! only this origin's scripts, styles and API ([`CONTENT_SECURITY_POLICY`]). The page talks
//! to the API with the token in an `Authorization` header, never in a URL.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// The policy every page response carries: this origin only, no inline script or style.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What `index.html` writes where the asset version goes.
const VERSION_PLACEHOLDER: &str = "__UI_VERSION__";

/// The page's files: name, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 9] = [
    ("app.js", JAVASCRIPT, include_bytes!("../ui/app.js")),
    ("api.js", JAVASCRIPT, include_bytes!("../ui/api.js")),
    ("chart.js", JAVASCRIPT, include_bytes!("../ui/chart.js")),
    ("filter.js", JAVASCRIPT, include_bytes!("../ui/filter.js")),
    ("table.js", JAVASCRIPT, include_bytes!("../ui/table.js")),
    ("state.js", JAVASCRIPT, include_bytes!("../ui/state.js")),
    ("format.js", JAVASCRIPT, include_bytes!("../ui/format.js")),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../ui/icon.svg"),
    ),
];

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

const INDEX_HTML: &str = include_str!("../ui/index.html");

/// The page's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui/{version}/{file}", get(asset))
}

/// The hash of every asset, the first 16 hex digits.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        for (name, _, bytes) in ASSETS {
            hasher.update(name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        hasher.update(INDEX_HTML.as_bytes());
        hex::encode(hasher.finalize())[..16].to_owned()
    })
}

fn index_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| INDEX_HTML.replace(VERSION_PLACEHOLDER, version()))
}

async fn index(request_headers: HeaderMap) -> Response {
    // Revalidated every time (cheap: an ETag match is a 304), so a new binary shows at once.
    respond(
        &request_headers,
        "text/html; charset=utf-8",
        index_html().as_bytes(),
        "no-cache",
    )
}

async fn asset(
    Path((asset_version, file)): Path<(String, String)>,
    request_headers: HeaderMap,
) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return crate::http::error_response(
            StatusCode::NOT_FOUND,
            "Not Found.",
            "The audit page has no such file.",
        );
    };
    let cache_control = if asset_version == version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    respond(&request_headers, content_type, bytes, cache_control)
}

fn respond(
    request_headers: &HeaderMap,
    content_type: &'static str,
    bytes: &'static [u8],
    cache_control: &'static str,
) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32]);
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_names_its_versioned_assets_under_a_strict_policy() {
        let response = get("/", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        let etag = response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_owned();
        let html = response.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(html.to_vec()).unwrap();
        assert!(html.contains(&format!("/ui/{}/app.js", version())));
        assert!(!html.contains(VERSION_PLACEHOLDER));
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "nothing inline"
        );
        assert_eq!(
            get("/", Some(&etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
    }

    #[tokio::test]
    async fn assets_of_this_version_are_immutable_and_others_revalidated() {
        let current = get(&format!("/ui/{}/app.js", version()), None).await;
        assert_eq!(current.status(), StatusCode::OK);
        assert_eq!(current.headers()[header::CONTENT_TYPE], JAVASCRIPT);
        assert!(
            current.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let old = get("/ui/0000/app.css", None).await;
        assert_eq!(old.status(), StatusCode::OK);
        assert_eq!(old.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            get("/ui/x/secret.txt", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn every_module_the_scripts_import_is_embedded() {
        for (name, _, bytes) in ASSETS {
            let text = String::from_utf8_lossy(bytes);
            for line in text.lines().filter(|line| line.starts_with("import ")) {
                let imported = line.rsplit("'./").next().unwrap().trim_end_matches("';");
                assert!(
                    ASSETS.iter().any(|(known, _, _)| *known == imported),
                    "{name} imports {imported}, which is not embedded"
                );
            }
        }
    }
}
