//! The browser UI, built by Vite into `web/ui/dist` and embedded at
//! compile time (read from disk in debug builds).

use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "ui/dist"]
#[allow_missing = true]
struct Assets;

const NOT_BUILT: &str = "<!doctype html><title>meshtwin</title>\
<h1>The meshtwin UI is not built</h1>\
<p>The API is up. Build the UI with <code>npm --prefix web/ui ci &amp;&amp; npm --prefix web/ui run build</code> \
(<code>scripts/demo</code> does this), then rebuild meshtwin.</p>";

pub(crate) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    match Assets::get(path) {
        Some(file) => {
            let cache = if path.starts_with("assets/") {
                // Vite puts a content hash in these names.
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
                    (header::CACHE_CONTROL, cache.to_owned()),
                ],
                file.data,
            )
                .into_response()
        }
        None if path == "index.html" => {
            (StatusCode::SERVICE_UNAVAILABLE, Html(NOT_BUILT)).into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
