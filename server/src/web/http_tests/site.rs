//! What every page shares, through the router: static files under hashed names, the
//! cross-site check on form posts, and the 404 page.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::{TestResult, assert_page_headers, form_post, get, send, test_app};

#[tokio::test]
async fn unknown_pickup_is_a_404_page() -> TestResult {
    let t = test_app(1 << 20).await?;
    for uri in ["/p/AAAAAAAAAAAAAAAAAAAAAA", "/p/not%20valid", "/nowhere"] {
        let reply = send(&t.router, get(uri)).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_page_headers(&reply);
        assert!(reply.text().contains("<h1>"), "{}", reply.text());
        assert!(reply.headers.get(header::SET_COOKIE).is_none());
    }
    Ok(())
}

#[tokio::test]
async fn static_assets_are_served_hashed_and_cached() -> TestResult {
    let t = test_app(1 << 20).await?;
    for (name, ctype) in [
        ("style.css", "text/css"),
        ("pickup.js", "text/javascript"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let reply = send(&t.router, get(crate::web::assets::url(name))).await?;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert!(
            reply.header(header::CONTENT_TYPE).starts_with(ctype),
            "{name}"
        );
        assert!(reply.header(header::CACHE_CONTROL).contains("immutable"));
        assert_eq!(reply.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!reply.body.is_empty());
    }
    let reply = send(&t.router, get("/static/style.css")).await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() -> TestResult {
    let t = test_app(1 << 20).await?;
    let request = Request::post("/p/AAAAAAAAAAAAAAAAAAAAAA/code")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())?;
    let reply = send(&t.router, request).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_page_headers(&reply);
    // same origin gets through to the (unknown) message
    let reply = send(
        &t.router,
        form_post("/p/AAAAAAAAAAAAAAAAAAAAAA/code", "", None),
    )
    .await?;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    Ok(())
}
